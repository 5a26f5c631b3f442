"""The browser app of an export: a page that classifies photos and camera frames with the
export's .tflite files in LiteRT.js (LiteRT compiled to WebAssembly), on this computer or a
phone, and the local server behind ``cnnkeras serve``."""

from cnnkeras.web._app import APP_FILES, runtime_files, write_app
from cnnkeras.web._server import DEFAULT_PORT, LOOPBACK, Site, serve

__all__ = ["APP_FILES", "DEFAULT_PORT", "LOOPBACK", "Site", "runtime_files", "serve", "write_app"]
