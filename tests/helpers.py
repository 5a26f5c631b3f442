"""Helpers the tests share: the command line in a child process, and keras.applications
constructors that build locally instead of downloading."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras

CLI = [sys.executable, "-m", "cnnkeras"]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``cnnkeras ARGS...`` in a fresh process, as a user runs it; output captured as text."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def run_parity(script: str, out, *args: str) -> dict:
    """``python tests/SCRIPT ARGS --out OUT`` (a parity script: single-device training against
    a distributed route) in a fresh process; the JSON object it writes."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name(script)), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(Path(out).read_text())


def history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def kill_after_epochs(args: list[str], out, pattern: str, epochs: int):
    """Start ``cnnkeras train`` in a child process, SIGKILL it once ``epochs`` history rows
    are written, and return its run folder."""
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline:
        runs = list(out.glob(pattern))
        if runs and (runs[0] / "history.csv").is_file() and len(history(runs[0])) >= epochs:
            break
        assert child.poll() is None, child.stderr.read().decode()
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    return runs[0]


def killed_and_resumed(args: list[str], out: Path, rows: int, epochs: int):
    """``cnnkeras ARGS`` run to the end into ``out``/whole, and again into ``out``/killed,
    SIGKILLed once ``rows`` history rows are written (before its ``epochs``) and finished
    with ``train --resume``; returns (resumed run folder, uninterrupted run folder, the
    resume's JSON result)."""
    whole = subprocess.run([*CLI, *args, "--out", str(out / "whole")], capture_output=True)
    assert whole.returncode == 0, whole.stderr[-2000:]
    run = kill_after_epochs([*CLI, *args, "--out", str(out / "killed")], out, "killed/*", rows)
    assert len(history(run)) < epochs, "the run finished before it could be killed"
    assert json.loads((run / "config.json").read_text())["status"] == "running"
    proc = run_cli("train", "--resume", str(run), "--quiet", "--json")
    assert proc.returncode == 0, proc.stderr
    (reference,) = (out / "whole").iterdir()
    return run, reference, json.loads(proc.stdout)


class OfflineApplication:
    """Stands in for a ``keras.applications`` constructor: the same network built with
    ``weights=None`` (random) instead of a download. Keeps the calls, the model it built, its
    weights as built, and runs ``prepare`` on the model first (to give batch norm non-trivial
    statistics, for example)."""

    def __init__(self, real, prepare=None):
        self.real, self.prepare = real, prepare
        self.calls: list[dict] = []
        self.model = None
        self.weights: list = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        model = self.real(**{**kwargs, "weights": None})
        if self.prepare is not None:
            self.prepare(model)
        self.model, self.weights = model, [w.copy() for w in model.get_weights()]
        return model


def offline_application(monkeypatch, name: str, prepare=None) -> OfflineApplication:
    """Replace ``keras.applications.<name>`` for this test with an offline stand-in."""
    app = OfflineApplication(getattr(keras.applications, name), prepare)
    monkeypatch.setattr(keras.applications, name, app)
    return app


def one_per_builder() -> list[str]:
    """A registered model for each code path: the first of each builder function, and
    ResNet-50 for the bottleneck blocks of the ResNet builder. The variants of one builder
    differ only in depth and width, which every variant's pinned parameters and MACs check
    (test_models.py); structural tests (building, saving, heads, Grad-CAM) need one of each."""
    from cnnkeras.models import list_models, model_info

    first = {model_info(name).builder: name for name in reversed(list_models())}
    return sorted({*first.values(), "resnet50"})


def run_callback(monkeypatch, make) -> None:
    """Every later run's fit callbacks end with ``make(fit_pipelines' keyword arguments)``:
    after the pipelines' own (precise batch norm), before early stopping and the checkpoint,
    so that what it writes into an epoch's logs is what the run control sees."""
    from cnnkeras.train import _run

    original = _run.fit_pipelines

    def fit_pipelines(*args, **kwargs):
        fit_data = original(*args, **kwargs)
        return fit_data._replace(callbacks=[*fit_data.callbacks, make(kwargs)])

    monkeypatch.setattr(_run, "fit_pipelines", fit_pipelines)


def run_split(run: Path, split: str):
    """A run's ``split`` as its splits.json recorded it: the model input of every image, under
    the run's preprocessing (config.json), and the labels."""
    import numpy as np

    from cnnkeras.data import Preprocessing, SplitImages, load_dataset

    record = json.loads((run / "config.json").read_text())
    recorded = json.loads((run / "splits.json").read_text())
    part = load_dataset(record["dataset"], record=recorded).splits[split]
    prep = Preprocessing.from_dict(record["preprocessing"])
    return np.stack(list(SplitImages(part, prep))), part.labels


BROWSER_DRIVER = Path(__file__).with_name("browser.cjs")
NODE_MODULES = Path(__file__).parents[1] / "cnnkeras" / "web" / "node_modules"


def browse(url: str, **options) -> dict:
    """The browser app at ``url`` in headless Chromium, driven as a user would
    (tests/browser.cjs: ``variants`` to self-test, ``photos`` to choose, ``bench`` runs,
    ``screenshot``); what the page did."""
    proc = subprocess.run(
        ["node", str(BROWSER_DRIVER), url, json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@contextlib.contextmanager
def serving(*args: str):
    """``cnnkeras serve ARGS --port 0`` in a child process: yields (its URL, the process);
    stopped with Ctrl-C (SIGINT) afterwards, its exit status and output checked."""
    proc = subprocess.Popen(
        [*CLI, "serve", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    match = re.search(r" at (http://\S+)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"serve did not start: {line}{proc.communicate()[1][-2000:]}")
    try:
        yield match.group(1), proc
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]
