"""Data-parallel training over several processes and machines: ``keras.distribution`` on JAX.

Keras 3's ``fit`` does not run under TensorFlow's ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585); its maintainers point to the JAX backend with
``keras.distribution``, which is what this uses. Every process builds the same model from
the same seed, reads the same dataset and the same shuffled global batches; Keras gives each
process its share of every global batch (``DataParallel.distribute_tf_dataset``: rebatch,
then shard) and JAX assembles the global batch across processes, so a step sees what one
process would see, and batch norm's statistics are the global batch's without any option.
Process 0 writes the run folder; the others work in a scratch copy that is deleted.

The processes find each other through JAX's coordinator on process 0, at the first of
``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (Keras' own variables, with
``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``). It listens on
loopback unless ``CNNKERAS_COORDINATOR_BIND`` names another address (``0.0.0.0`` for
several machines). A process that stops sending heartbeats for ``HEARTBEAT_S`` seconds stops
the others.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import keras

from cnnkeras import _io
from cnnkeras._files import CACHE_DIR, LOGS_DIR
from cnnkeras._launch import ADDRESSES, BIND, PROCESS_ID, PROCESSES
from cnnkeras.errors import UserError

HEARTBEAT_S = 15  # JAX's default is 100 s; a killed process must stop the run within a minute

_cluster: Cluster | None = None


@dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-host run."""

    process_id: int
    processes: int
    devices: int  # over all processes

    @property
    def writer(self) -> bool:
        """Process 0 writes the run folder and the report."""
        return self.process_id == 0


def _int_env(name: str) -> int:
    value = os.environ.get(name, "")
    if not value.isdigit():
        raise UserError(
            f"`distribute` multi-host needs {name} (an integer, got {value!r}); start it with "
            "`cnnkeras launch --processes N -- train ...`; machines: `cnnkeras docs distributed`"
        )
    return int(value)


def cluster_from_env() -> tuple[str, int, int]:
    """(coordinator address, number of processes, this process's id) from Keras' variables."""
    if keras.backend.backend() != "jax":
        raise UserError(
            "`distribute` multi-host runs on the JAX backend (KERAS_BACKEND=jax, set before "
            "Python starts): start it with `cnnkeras launch --processes N -- train ...`"
        )
    addresses = os.environ.get(ADDRESSES, "").strip()
    if not addresses:
        raise UserError(f"`distribute` multi-host needs {ADDRESSES} (host:port of process 0)")
    processes, process_id = _int_env(PROCESSES), _int_env(PROCESS_ID)
    if processes < 1 or not 0 <= process_id < processes:
        raise UserError(f"{PROCESS_ID} must be in 0..{processes - 1}, got {process_id}")
    coordinator = addresses.split(",")[0].strip()
    if ":" not in coordinator:
        raise UserError(f"{ADDRESSES} must start with host:port, got {coordinator!r}")
    return coordinator, processes, process_id


def start(verbose: int = 1) -> Cluster:
    """Join the run's processes (once per process) and make every model built after this
    data-parallel over all their devices."""
    global _cluster
    if _cluster is not None:
        return _cluster
    coordinator, processes, process_id = cluster_from_env()
    import jax

    port = coordinator.rsplit(":", 1)[1]
    bind = os.environ.get(BIND, "127.0.0.1")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=processes,
            process_id=process_id,
            heartbeat_timeout_seconds=HEARTBEAT_S,
            initialization_timeout=120,
            coordinator_bind_address=f"{bind}:{port}",
        )
    except Exception as error:  # JAX raises RuntimeError or XlaRuntimeError
        raise UserError(
            f"process {process_id} could not join the {processes} processes at {coordinator}: "
            f"{str(error).splitlines()[0]}"
        ) from None
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    _cluster = Cluster(process_id, processes, len(devices))
    _io.log(
        verbose and process_id == 0,
        f"multi-host: {processes} processes, {len(devices)} device(s), coordinator {coordinator}",
    )
    return _cluster


def current() -> Cluster | None:
    """The cluster this process joined, if any."""
    return _cluster


def abandon(error: BaseException, run: Path) -> NoReturn:
    """End this process after a failure inside the run's training, with one line. Its
    collective operations fail at once when another process dies (the connection is reset),
    or after ``HEARTBEAT_S`` when a machine stops answering; JAX's own shutdown would then
    wait for the dead process and abort, so this process exits directly (every file the run
    wrote is complete: each is written atomically)."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    print(
        f"cnnkeras: error: process {_cluster.process_id} of the multi-host run stopped: "
        f"{first[:300]}; when another process died, continue the run from its last epoch "
        f"with `train --resume {run if _cluster.writer else 'RUN_FOLDER'}` under the same "
        "launch",
        file=sys.stderr,
        flush=True,
    )
    if not _cluster.writer:
        discard_scratch(run)
    os._exit(1)


def finish_in_tensorflow(run: Path, status: str, seconds: float, verbose: int) -> dict:
    """Process 0's end of the run: the test-split report and the final config.json, written
    by a child process on the TensorFlow backend (``_finish``), which loads the model JAX
    trained; its result."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERAS_DISTRIBUTION_")}
    env["KERAS_BACKEND"] = "tensorflow"
    command = [sys.executable, "-m", "cnnkeras.train._finish", str(run), status]
    proc = subprocess.run(
        [*command, str(seconds), str(verbose)], env=env, stdout=subprocess.PIPE, text=True
    )
    lines = proc.stdout.strip().splitlines()
    if len(lines) > 1:  # its log lines
        print("\n".join(lines[:-1]), flush=True)
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the report of {run} failed (exit status {proc.returncode})")
    return json.loads(lines[-1])


def barrier(name: str) -> None:
    """Wait until every process of the run has come here."""
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)


def scratch_folder(run: Path, *, copy: bool) -> Path:
    """Where a process other than 0 writes what process 0 writes to ``run``: a temporary
    folder (with a copy of ``run``, to resume from); ``discard_scratch`` deletes it."""
    scratch = Path(tempfile.mkdtemp(prefix=f"cnnkeras-process{_cluster.process_id}-")) / "run"
    if copy:
        shutil.copytree(run, scratch, ignore=shutil.ignore_patterns(CACHE_DIR, LOGS_DIR))
    return scratch


def discard_scratch(folder: Path) -> None:
    shutil.rmtree(folder.parent, ignore_errors=True)
