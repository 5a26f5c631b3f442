"""``cnnkeras serve``: the browser app of one export folder on a local HTTP server. Read-only
(GET and HEAD), bound to loopback unless told otherwise, and it serves only the page, the
runtime files and the regular files inside the export folder: any other path is refused."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cnnkeras._files import LABELS_FILE, PREPROCESS_FILE
from cnnkeras.errors import UserError
from cnnkeras.web._app import PAGE, PAGE_FILES, RUNTIME_FOLDER, runtime_files

DEFAULT_PORT = 8000
LOOPBACK = "127.0.0.1"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",  # what WebAssembly.instantiateStreaming requires
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".tflite": "application/octet-stream",
}


class Site:
    """What each URL path of the app is: the page, a runtime file, or a file of the export."""

    def __init__(self, export: Path):
        self.export = export.resolve()
        self.runtime = runtime_files()

    def file(self, url: str) -> Path | None:
        """The file behind ``url``, or None: only plain names (no '..', '.', hidden or empty
        segment, backslash or NUL), and inside the export folder once links are resolved."""
        path = unquote(urlsplit(url).path)
        if not path.startswith("/"):
            return None
        parts = path[1:].split("/") if path != "/" else ["index.html"]
        if any(not p or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
            return None
        if len(parts) == 1 and parts[0] in PAGE_FILES:
            return PAGE / parts[0]
        if len(parts) == 2 and parts[0] == RUNTIME_FOLDER:
            return self.runtime.get(parts[1])
        target = self.export.joinpath(*parts).resolve()
        if not target.is_relative_to(self.export) or not target.is_file():
            return None
        return target


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "cnnkeras"

        def do_GET(self):
            self._answer(body=True)

        def do_HEAD(self):
            self._answer(body=False)

        def _answer(self, body: bool) -> None:
            path = site.file(self.path)
            if path is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", TYPES.get(path.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(path.stat().st_size))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if body:
                with path.open("rb") as f:
                    shutil.copyfileobj(f, self.wfile)

        def log_message(self, format, *args):
            pass  # the page is the interface; a request log would bury the address

    return Handler


def check_export(folder: Path) -> None:
    """One line if ``folder`` is not an export the page can run."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; pass the folder cnnkeras export wrote")
    needed = (PREPROCESS_FILE, LABELS_FILE)
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing or not any(folder.glob("model_*.tflite")):
        raise UserError(
            f"{folder} is not an export (no {(missing or ['model_*.tflite'])[0]}); "
            "make one with cnnkeras export"
        )


def lan_address() -> str | None:
    """This machine's address on its network, which a phone there may reach (connecting a UDP
    socket picks the outgoing interface and sends no packet); None without a network."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


@contextlib.contextmanager
def _stopped_by_signals():
    """Ctrl-C and SIGTERM stop the server cleanly, even where the shell started it with
    SIGINT ignored (a background job)."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; its own stop the server then
        return
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def serve(
    export_dir: str | Path,
    port: int = DEFAULT_PORT,
    bind: str = LOOPBACK,
    verbose: int = 1,
) -> dict:
    """Serve the app of ``export_dir`` until Ctrl-C; ``port`` 0 takes a free one. Returns what
    was served, once stopped."""
    folder = Path(export_dir)
    check_export(folder)
    site = Site(folder)
    try:
        server = ThreadingHTTPServer((bind, port), _handler(site))
    except OSError as err:
        raise UserError(
            f"cannot listen on {bind}:{port} ({err.strerror}); pass another `port` (0: any free)"
        ) from None
    server.daemon_threads = True
    host, port = server.server_address[:2]
    shown = "localhost" if host in (LOOPBACK, "::1") else host
    if host in ("0.0.0.0", ""):  # every interface: the one a phone would reach
        shown = lan_address() or "localhost"
    urls = [f"http://{shown}:{port}/"]
    # the address is what a server says, even with --quiet or --json
    print(f"serving {folder} at {' '.join(urls)} (Ctrl-C stops)", flush=True)
    if verbose and host not in (LOOPBACK, "localhost", "::1"):
        print(
            "on a phone on the same network, open that address: photos work over http; "
            "the live camera needs https or localhost",
            flush=True,
        )
    try:
        with _stopped_by_signals():
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    if verbose:
        print("stopped", file=sys.stderr, flush=True)
    return {"export": str(folder), "urls": urls}
