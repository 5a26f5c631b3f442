"""Fresh Python processes for work whose memory must go back to the system when it ends.

TensorFlow keeps some memory for the life of a process (traced functions, allocator pools),
``clear_session`` included; only the end of a process returns all of it. A ``Child`` runs
``module:function(*args)`` in a new interpreter (never a fork: TensorFlow is not fork-safe;
not multiprocessing's spawn either, which re-runs the caller's script unless it is guarded by
``if __name__ == "__main__"``), imports TensorFlow there without its load-time log lines,
ends when its parent dies (a killed search leaves no orphan training on), and sends back a
JSON result or the error it raised.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
import traceback
from pathlib import Path

from cnnkeras import _io
from cnnkeras.errors import UserError


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with stderr closed: TF 2.21 logs CUDA and oneDNN notices at load time
    through C++ logging that ignores TF_CPP_MIN_LOG_LEVEL. Set CNNKERAS_VERBOSE=1 to see them."""
    if "tensorflow" in sys.modules:
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "jax":
        # TensorFlow's tf.lite imports jax when it is installed (for a converter cnnkeras
        # does not use), which slows every TensorFlow process's start (BENCHMARKS.md); only
        # multi-host runs need jax, and they run on the JAX backend
        sys.modules.setdefault("jax", None)
    with _io.quiet_stderr():
        import tensorflow  # noqa: F401


class Died:
    """What ``Child.wait`` returns for a process that ended without a result."""

    def __init__(self, exitcode: int):
        self.exitcode = exitcode

    def __str__(self) -> str:
        code = self.exitcode
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


class Child:
    """``module:function(*args)`` (JSON arguments) in a fresh process that inherits this
    one's environment plus ``env``, and writes to this one's stdout and stderr. The child
    imports TensorFlow first (quietly) unless ``tensorflow`` is False: a function that needs
    none starts in a fraction of a second rather than ten."""

    def __init__(self, target: str, *args, env: dict | None = None, tensorflow: bool = True):
        read, write = os.pipe()
        root = str(Path(__file__).resolve().parents[1])  # this very cnnkeras, installed or not
        boot = (
            f"import sys; {root!r} in sys.path or sys.path.insert(0, {root!r}); "
            f"from cnnkeras._spawn import _serve; _serve({write}, {tensorflow!r})"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", boot],
            stdin=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            pass_fds=(write,),
        )
        os.close(write)  # the child holds the only writer: EOF here means it is done or gone
        self._result = os.fdopen(read, "rb")
        # The request, then stdin stays open: the child ends when it reads EOF, i.e. when
        # this process ends, however it ends.
        self.process.stdin.write(json.dumps({"target": target, "args": args}).encode() + b"\n")
        self.process.stdin.flush()

    def wait(self):
        """The function's return value, ``Died`` for a process that ended without one, or the
        ``UserError`` it raised (other exceptions come back as ``RuntimeError``)."""
        with self._result:
            reply = self._result.read()
        code = self.process.wait()
        self.process.stdin.close()
        if not reply:
            return Died(code)
        reply = json.loads(reply)
        if reply["kind"] == "user":
            raise UserError(reply["value"])
        if reply["kind"] == "bug":
            raise RuntimeError(reply["value"])
        return reply["value"]

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()


def _serve(result_fd: int, tensorflow: bool = True) -> None:
    request = json.loads(sys.stdin.buffer.readline())

    def exit_with_parent():
        while os.read(0, 4096):  # empty at EOF: the parent is gone
            pass
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    # as in the CLI: no TensorFlow C++ notices (no CUDA here, ...) from every child
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if tensorflow:
            import_tensorflow_quietly()
        module, name = request["target"].split(":")
        reply = {
            "kind": "ok",
            "value": getattr(importlib.import_module(module), name)(*request["args"]),
        }
    except UserError as err:
        reply = {"kind": "user", "value": str(err)}
    except KeyboardInterrupt:
        return  # the parent got the same Ctrl-C and reports it
    except Exception as err:  # a bug: its traceback here, its one line in the parent
        traceback.print_exc()
        reply = {"kind": "bug", "value": f"{type(err).__name__}: {err}"}
    sys.stdout.flush()
    with os.fdopen(result_fd, "w") as out:
        json.dump(reply, out)
