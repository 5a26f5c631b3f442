"""Helpers the tests share: the command line in a child process, and keras.applications
constructors that build locally instead of downloading."""

from __future__ import annotations

import subprocess
import sys

import keras

CLI = [sys.executable, "-m", "cnnkeras"]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``cnnkeras ARGS...`` in a fresh process, as a user runs it; output captured as text."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


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
