"""``cnnkeras launch``: the processes of a multi-host run on one machine (``_multihost``
runs inside each). Light on purpose: the launcher imports neither Keras nor TensorFlow."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnnkeras.errors import UserError

# Keras' own variables (keras.distribution.initialize reads them), and the coordinator's
# listening address
ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
BIND = "CNNKERAS_COORDINATOR_BIND"

GRACE_S = 20  # after one process fails, how long the others get to stop on their own


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _ended(code: int) -> str:
    return f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"


def launch(
    command: list[str],
    processes: int,
    *,
    port: int | None = None,
    bind: str | None = None,
    log_dir: str | Path | None = None,
    force: bool = False,
) -> int:
    """Run ``command`` (e.g. ``python -m cnnkeras train ...``) as ``processes`` processes of
    one multi-host run on this machine, the coordinator on 127.0.0.1:``port`` (a free port
    by default), bound to ``bind`` (loopback by default). Process 0 prints as usual; the
    others' output goes to ``log_dir`` (by default a temporary folder, removed after a
    success). More processes than CPU cores need ``force``. When a process fails the others
    are given ``GRACE_S`` seconds and then stopped; returns the first failure's exit status
    (1 for a signal), or 0."""
    cores = os.cpu_count() or 1
    if processes < 1:
        raise UserError(f"`processes` must be >= 1, got {processes}")
    if processes > cores and not force:
        raise UserError(
            f"`processes` {processes} is more than this machine's {cores} CPU cores; each is a "
            "whole training process: pass fewer, or `force` to start them anyway"
        )
    if port is not None and not 1 <= port <= 65535:
        raise UserError(f"`port` must be between 1 and 65535, got {port}")
    if not command:
        raise UserError("`launch` needs a command after --, e.g. -- train --dataset digits")
    port = port or free_port()
    logs = Path(log_dir or tempfile.mkdtemp(prefix="cnnkeras-launch-"))
    logs.mkdir(parents=True, exist_ok=True)
    code = _start(command, processes, port, bind, logs)
    if code == 0 and log_dir is None:
        shutil.rmtree(logs, ignore_errors=True)
    return code


def _start(command: list[str], processes: int, port: int, bind: str | None, logs: Path) -> int:
    """The processes, watched until all end or one fails."""
    children = []
    for i in range(processes):
        env = {
            **os.environ,
            "KERAS_BACKEND": "jax",
            ADDRESSES: f"127.0.0.1:{port}",
            PROCESSES: str(processes),
            PROCESS_ID: str(i),
        }
        if bind:
            env[BIND] = bind
        out = None if i == 0 else open(logs / f"process-{i}.log", "wb")  # noqa: SIM115
        children.append(subprocess.Popen(command, env=env, stdout=out, stderr=out))
    try:
        return _watch(children, logs)
    except KeyboardInterrupt:
        _stop(children)
        raise


def _watch(children: list[subprocess.Popen], logs: Path) -> int:
    while True:
        codes = [child.poll() for child in children]
        failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
        if not failed and all(c == 0 for c in codes):
            return 0
        if failed:
            # the first seen to fail, one killed by a signal first: the others' failures are
            # usually its consequence (their collective operations lose it)
            i, code = min(failed, key=lambda failure: (failure[1] > 0, failure[0]))
            deadline = time.monotonic() + GRACE_S
            while time.monotonic() < deadline and any(c.poll() is None for c in children):
                time.sleep(0.2)
            stopped = _stop(children)
            where = "" if i == 0 else f" (its output: {logs / f'process-{i}.log'})"
            also = f"; stopped process(es) {', '.join(map(str, stopped))}" if stopped else ""
            print(
                f"cnnkeras launch: process {i} {_ended(code)}{where}{also}. Continue the run "
                "from its last epoch with the same launch and `train --resume RUN_FOLDER`",
                file=sys.stderr,
                flush=True,
            )
            return code if code > 0 else 1
        time.sleep(0.2)


def _stop(children: list[subprocess.Popen]) -> list[int]:
    """Terminate the processes still running (kill those that ignore it); their indices."""
    running = [i for i, child in enumerate(children) if child.poll() is None]
    for i in running:
        children[i].terminate()
    for i in running:
        try:
            children[i].wait(timeout=5)
        except subprocess.TimeoutExpired:
            children[i].kill()
            children[i].wait()
    return running
