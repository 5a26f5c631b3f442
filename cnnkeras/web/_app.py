"""The files of the browser app: the page (shipped in the package) and LiteRT.js, the runtime
it runs .tflite files with (installed from npm into ``cnnkeras/web/node_modules`` by
``npm ci --prefix cnnkeras/web``, pinned by the package-lock.json beside this file)."""

from __future__ import annotations

import json
from pathlib import Path

from cnnkeras import _io
from cnnkeras.errors import UserError

HERE = Path(__file__).parent
PAGE = HERE / "page"
PAGE_FILES = ("index.html", "app.js", "app.css")
RUNTIME_FOLDER = "runtime"
# URL name in runtime/ -> file in node_modules. Two builds of LiteRT: relaxed SIMD (current
# Chrome, Edge, Firefox) and compat (browsers without it, Safari among them), each a 9 MB
# wasm; the threaded and JSPI builds need cross-origin isolation or flags, so they are left.
RUNTIME = {
    "litert.js": "@litertjs/core/dist/index.js",
    "wasm-utils.js": "@litertjs/wasm-utils/dist/index.js",
    **{
        name: f"@litertjs/core/wasm/{name}"
        for build in ("", "_compat")
        for name in (f"litert_wasm{build}_internal.js", f"litert_wasm{build}_internal.wasm")
    },
}
NOTICE = "NOTICE.txt"
APP_FILES = (*PAGE_FILES, RUNTIME_FOLDER)  # what write_app puts at the top of a folder


def node_modules() -> Path:
    return HERE / "node_modules"


def runtime_files() -> dict[str, Path]:
    """runtime/ name -> the installed file; one line saying how to install them if missing."""
    files = {name: node_modules() / source for name, source in RUNTIME.items()}
    if not all(path.is_file() for path in files.values()):
        raise UserError(
            f"the browser runtime (LiteRT.js) is not installed: run `npm ci --prefix {HERE}`"
        )
    return files


def notice() -> str:
    """Where the runtime files come from and under which licence."""
    lines = ["LiteRT.js, https://github.com/google-ai-edge/LiteRT (Apache License 2.0):"]
    for package in ("@litertjs/core", "@litertjs/wasm-utils"):
        meta = json.loads((node_modules() / package / "package.json").read_text())
        lines.append(f"- {package} {meta['version']} ({meta.get('license', 'see the package')})")
    return "\n".join(lines) + "\n"


def write_app(folder: str | Path) -> None:
    """Write the page and the runtime (APP_FILES) into an export folder, so that the folder,
    copied to any static host, is the app."""
    folder = Path(folder)
    files = runtime_files()
    for name in PAGE_FILES:
        _io.write_bytes(folder / name, (PAGE / name).read_bytes())
    runtime = folder / RUNTIME_FOLDER
    runtime.mkdir(exist_ok=True)
    for name, source in files.items():
        _io.copy_file(source, runtime / name)
    _io.write_text(runtime / NOTICE, notice())
