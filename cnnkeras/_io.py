"""Atomic file writes: a temporary file in the same folder, then a rename, so that a killed
process never leaves a half-written model, report or table behind; their reading back; and
the progress lines that commands print."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# Names from the file system may hold bytes that are not UTF-8 (a class folder named in
# Latin-1, say); Python keeps them as surrogates, and text files write them back as the
# bytes they were, so a run's files record every name losslessly.
ERRORS = "surrogateescape"


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", errors=ERRORS)


def read_text(path: str | Path) -> str:
    """A text file that ``write_text`` wrote, names of any bytes included."""
    return Path(path).read_text(encoding="utf-8", errors=ERRORS)


def shown(text: str) -> str:
    """``text`` fit for a reader or another program (a phone app's label, a web page): bytes
    of a name that are not UTF-8 become U+FFFD."""
    return text.encode("utf-8", ERRORS).decode("utf-8", "replace")


MIN_FREE_MB = 16  # below this, output is refused up front: a run would fail half-way


def check_writable(folder: str | Path | None, option: str = "out") -> None:
    """Refuse, before any work starts, an output folder that cannot take files: a file in
    its place, no permission, a read-only or full file system. ``folder`` need not exist
    (the nearest existing folder above it is what is tried); ``option`` names it in the
    message."""
    from cnnkeras.errors import UserError

    probe = Path(folder or ".").absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"`{option}`: {probe} is a file, not a folder; choose another place")
    try:
        with tempfile.TemporaryFile(dir=probe) as f:
            f.write(b"0")
    except OSError as err:
        raise UserError(
            f"`{option}`: cannot write in {probe} ({err.strerror}); choose another place"
        ) from None
    free = shutil.disk_usage(probe).free / 2**20
    if free < MIN_FREE_MB:
        raise UserError(
            f"`{option}`: {probe} has {free:.0f} MiB free, under {MIN_FREE_MB}; free some "
            "space or choose another place"
        )


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def copy_file(source: str | Path, path: str | Path) -> None:
    """``source``'s bytes at ``path``, written atomically."""
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def read_json(path: str | Path) -> dict:
    """A JSON object from a file, or an empty one where there is no file; a file that is not
    a JSON object is a user's problem (edited by hand, cut short), said in one line."""
    from cnnkeras.errors import UserError

    path = Path(path)
    if not path.is_file():
        return {}
    try:
        value = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise UserError(
            f"{path} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); "
            "restore it"
        ) from None
    if not isinstance(value, dict):
        raise UserError(f"{path} holds a JSON {type(value).__name__}, not an object; restore it")
    return value


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def log(verbose: int, message: str) -> None:
    """A progress line, flushed at once (runs are long and often piped), unless quiet."""
    if verbose:
        print(message, flush=True)


def safe_name(text: str) -> str:
    """``text`` as a file-name part: letters, digits, - _ . kept, anything else _."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def warn(message: str) -> None:
    """A warning on stderr, always: stdout may be a --json result."""
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


def save_model(model, path: str | Path) -> None:
    """``model.save`` through a temporary file (Keras needs the .keras suffix on it)."""
    with atomic_path(path) as tmp:
        model.save(tmp)


class Progress:
    """A progress line on stderr every few seconds for a scan that may be long (thousands of
    files or records); silent for short ones. Stderr keeps a command's --json output clean."""

    def __init__(self, what: str, verbose: int, every_s: float = 5.0, quiet_below: int = 2000):
        import time

        self.what, self.verbose, self.every_s = what, verbose, every_s
        self.quiet_below, self.count, self._clock = quiet_below, 0, time.monotonic
        self._last = self._clock()

    def update(self, n: int = 1) -> None:
        self.count += n
        due = self._clock() - self._last > self.every_s
        if self.verbose and self.count >= self.quiet_below and due:
            self._last = self._clock()
            self._say(f"{self.what}: {self.count:,}")

    def done(self) -> None:
        if self.verbose and self.count >= self.quiet_below:
            self._say(f"{self.what}: {self.count:,}, done")

    @staticmethod
    def _say(message: str) -> None:
        import sys

        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Standard error closed at the file-descriptor level, for native libraries (TensorFlow,
    LiteRT) that log through C++ whatever Python asks. CNNKERAS_VERBOSE=1 keeps it open."""
    if os.environ.get("CNNKERAS_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
