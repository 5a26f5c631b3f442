"""Where a search runs: in this process, in child processes, or as a chief with workers on
loopback (Keras Tuner's distributed mode).

Keras Tuner keeps its oracle state in the search folder: running the same search again after
a kill reloads it, keeps finished trials and re-runs only the one that was under way. Trials
run in child processes that hand over to a fresh one once they have grown by
``max_memory_growth_mb``: TensorFlow keeps memory after ``clear_session`` (about 10 MiB a
LeNet-5 trial here) that only the end of a process gives back.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import socket
import threading
from contextlib import nullcontext, redirect_stdout

from cnnkeras import _io
from cnnkeras._spawn import Child, Died
from cnnkeras.data import load_dataset
from cnnkeras.errors import UserError
from cnnkeras.models import model_info
from cnnkeras.train import (
    preprocessing_for,
    seed_everything,
)
from cnnkeras.tuning._experiment import MEMORY_GROWTH_MB, Experiment
from cnnkeras.tuning._hypermodel import ZooHyperModel
from cnnkeras.tuning._kt import save_all_trials
from cnnkeras.tuning._results import write_results
from cnnkeras.tuning._tuner import PROJECT, TUNER_ID, Handover, make_tuner


def _prepare(experiment: Experiment):
    info = model_info(experiment.arch)
    data = load_dataset(experiment.dataset, seed=experiment.seed)
    size = info.image_size(experiment.image_size)
    if size < info.min_size:
        raise UserError(f"image_size {size} is below {experiment.arch}'s minimum {info.min_size}")
    return data, preprocessing_for(experiment.arch, size, data.channels)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _search_process(
    fields: dict, max_growth_mb: float | None, verbose: int, handover: bool
) -> bool:
    """Run trials in this process until the search is over (True) or this process has grown
    by ``max_growth_mb`` and hands over to a fresh one (False)."""
    experiment = Experiment(**fields)
    seed_everything(experiment.seed)
    tf_logger = logging.getLogger("tensorflow")
    if _RetraceFilter not in map(type, tf_logger.filters):
        tf_logger.addFilter(_RetraceFilter())
    data, prep = _prepare(experiment)
    with redirect_stdout(io.StringIO()) if handover else nullcontext():  # "Reloading Tuner ..."
        hypermodel = ZooHyperModel(experiment, data, prep)
        tuner = make_tuner(experiment, hypermodel, max_growth_mb, verbose)
    try:
        tuner.search(verbose=verbose)
    except Handover:
        return False
    except RuntimeError as err:  # Keras Tuner's stop after too many failures in a row
        if "consecutive" not in str(err):
            raise
        save_all_trials(tuner.oracle)
        raise UserError(
            f"the search stopped: 3 trials in a row failed; reasons in "
            f"{experiment.out / 'trials.csv'}"
        ) from None
    return True


class _RetraceFilter(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning: every trial is a new
    model with new functions, which is what a search is, not a mistake to warn about."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "tf.function retracing" not in record.getMessage()


class _Role:
    """One part of a search (the whole of it, the chief, or one worker) played by one process
    at a time: a process that hands over, or dies, is followed by a fresh one until the
    search is over. Three deaths in a row, with no trial finished between, end the search."""

    def __init__(self, experiment: Experiment, max_growth_mb, verbose: int, env=None):
        self.args = (dataclasses.asdict(experiment), max_growth_mb, verbose)
        self.env, self.child, self.error, self.stopped = env or {}, None, None, False

    def play(self) -> None:
        deaths, handover = 0, False
        while not self.stopped:
            self.child = Child(
                "cnnkeras.tuning._processes:_search_process", *self.args, handover, env=self.env
            )
            done = self.child.wait()
            if isinstance(done, Died):
                deaths += 1
                if deaths == 3:
                    raise UserError(
                        f"the search process ended 3 times in a row ({done}); free some "
                        "memory or lower `batch_size`, then run the same command again"
                    )
            elif done:
                return
            else:
                deaths = 0
            handover = True

    def play_in_thread(self) -> threading.Thread:
        def target():
            try:
                self.play()
            except (UserError, RuntimeError) as err:
                self.error = err

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopped = True
        if self.child is not None:
            self.child.terminate()


def run_search(
    experiment: Experiment,
    *,
    workers: int = 0,
    host: str = "127.0.0.1",
    max_memory_growth_mb: float | None = MEMORY_GROWTH_MB,
    verbose: int = 1,
) -> dict:
    """Run (or resume) a search and write its results into ``experiment.out``.

    Trials run in a child process that hands over to a fresh one once it has grown by
    ``max_memory_growth_mb`` since its first trial (0: a fresh process for every trial;
    None: every trial in this process). With ``workers`` > 0, a chief oracle listens on
    ``host`` (loopback by default) and that many workers run the trials.
    """
    if workers < 0:
        raise UserError("`workers` must be >= 0")
    if max_memory_growth_mb is not None and not max_memory_growth_mb >= 0:  # NaN too
        raise UserError(
            "`max_memory_growth_mb` must be >= 0 (0: a fresh process per trial) or None"
        )
    experiment.out.mkdir(parents=True, exist_ok=True)
    _io.write_json(experiment.out / "experiment.json", experiment.__dict__)
    try:
        if max_memory_growth_mb is None and not workers:
            _search_process(dataclasses.asdict(experiment), None, verbose, False)
        elif not workers:
            _Role(experiment, max_memory_growth_mb, verbose).play()
        else:
            _distributed(experiment, workers, host, max_memory_growth_mb, verbose)
    except UserError:
        if any((experiment.out / PROJECT).glob("trial_*/trial.json")):
            write_results(experiment, verbose=0)  # the trials so far, failure reasons included
        raise
    if "KERASTUNER_ORACLE_IP" in os.environ:
        return {}  # this command is the chief or a worker of a larger search: no results here
    return write_results(experiment, verbose=verbose)


def _distributed(experiment: Experiment, workers: int, host: str, max_growth_mb, verbose: int):
    """A chief oracle on ``host`` and ``workers`` workers, all on this machine; returns when
    the search is over."""
    env = {"KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(_free_port())}
    chief = _Role(experiment, None, verbose, {**env, TUNER_ID: "chief"})
    chief_thread = chief.play_in_thread()  # workers wait for it: Keras Tuner's wait_for_ready
    roles = [
        _Role(experiment, max_growth_mb, verbose, {**env, TUNER_ID: f"tuner{i}"})
        for i in range(workers)
    ]
    for thread in [role.play_in_thread() for role in roles]:
        thread.join()
    chief_thread.join(timeout=120)
    chief.stop()
    errors = [role.error for role in [*roles, chief] if role.error]
    if errors:
        raise UserError(f"{len(errors)} search process(es) failed: {errors[0]}")
