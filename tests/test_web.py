"""The browser app's server and page, without a trained model: `cnnkeras serve` as a real
process (loopback by default, read-only, nothing outside the export folder, Ctrl-C), and a
corrupted .tflite shown as an error in a real headless Chromium, not a blank page. The page on
real exports is judged in tests/test_phone.py."""

import http.client
import json
import socket

import pytest
from helpers import browse, run_cli, serving

from cnnkeras.errors import UserError
from cnnkeras.web import Site, _app

QUANT = {"dtype": "float32", "scale": 0.0, "zero_point": 0}


@pytest.fixture
def export(tmp_path):
    """An export folder as the page reads it, with a .tflite file that is not one."""
    folder = tmp_path / "export"
    (folder / "golden").mkdir(parents=True)
    record = {
        "source": "runs/broken/model.keras",
        "preprocessing": {"height": 8, "width": 8, "channels": 3, "scale": 1 / 255, "offset": 0},
        "variants": {"float32": {"input": QUANT, "output": QUANT}},
    }
    (folder / "preprocess.json").write_text(json.dumps(record))
    (folder / "labels.txt").write_text("cat\ndog\n")
    (folder / "model_float32.tflite").write_bytes(b"TFL3 this is no model" * 10)
    (folder / "golden" / "expected.json").write_text('{"cases": []}')
    (tmp_path / "secret.txt").write_text("outside the export")
    (folder / "link.txt").symlink_to(tmp_path / "secret.txt")
    return folder


def _get(url: str, path: str) -> tuple[int, bytes, str]:
    """A raw GET of ``path`` exactly as written (no client-side normalisation)."""
    host, port = url.removeprefix("http://").strip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("GET", path, skip_host=False, skip_accept_encoding=True)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body, response.getheader("Content-Type", "")


def _listening(port: int) -> set[str]:
    """The local addresses a TCP socket listens on at ``port`` (from /proc/net/tcp)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


def test_serve_answers_only_inside_the_export_and_binds_loopback(export):
    with serving(str(export)) as (url, proc):
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        assert _listening(port) == {"0100007F"}  # 127.0.0.1 only
        status, body, kind = _get(url, "/")
        assert status == 200 and b'type="importmap"' in body and kind.startswith("text/html")
        status, body, kind = _get(url, "/runtime/litert_wasm_internal.wasm")
        assert (status, body[:4], kind) == (200, b"\0asm", "application/wasm")
        assert _get(url, "/preprocess.json")[0] == 200
        for path in (
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/golden/../../secret.txt",
            "/golden%2f..%2f..%2fsecret.txt",
            "//etc/passwd",
            "/link.txt",  # a link out of the folder
            "/runtime/package.json",  # only the runtime's own files
            "/.staging/x",
            "/golden",  # a folder
        ):
            status, body, _ = _get(url, path)
            assert status == 404 and b"outside the export" not in body, path
        conn = http.client.HTTPConnection(url.removeprefix("http://").strip("/"), timeout=10)
        conn.request("PUT", "/labels.txt", body=b"x")
        assert conn.getresponse().status == 501  # read-only
        assert (export / "labels.txt").read_text() == "cat\ndog\n"
    # serving() checked that Ctrl-C stopped it with status 0 and no traceback
    assert proc.returncode == 0


def test_serve_refuses_in_one_line(export, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        proc = run_cli("serve", str(export), "--port", port)
    assert proc.returncode == 2 and "pass another --port" in proc.stderr
    for folder, says in ((tmp_path / "missing", "is not a folder"), (tmp_path, "no preprocess")):
        proc = run_cli("serve", str(folder))
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_without_the_runtime_one_line_says_how_to_install_it(export, tmp_path, monkeypatch):
    monkeypatch.setattr(_app, "node_modules", lambda: tmp_path / "none")
    with pytest.raises(UserError, match="npm ci --prefix"):
        Site(export)
    before = {p: p.read_bytes() for p in export.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match="npm ci --prefix"):
        _app.write_app(export)
    assert {p: p.read_bytes() for p in export.rglob("*") if p.is_file()} == before


def test_a_corrupted_model_is_an_error_in_the_page(export):
    with serving(str(export)) as (url, _):
        page = browse(url)
    assert page["state"] == "error"
    assert "could not load model_float32.tflite" in page["error"], page


def test_bind_all_serves_the_network_only_when_asked(export):
    with serving(str(export), "--bind", "0.0.0.0") as (url, _):
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        assert _listening(port) == {"00000000"}  # every interface, as asked
        assert _get(url, "/labels.txt")[:2] == (200, b"cat\ndog\n")  # at the address it printed
