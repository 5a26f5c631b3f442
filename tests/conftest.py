"""Shared fixtures: fixed seeds, quiet TensorFlow, and a fresh Keras session per test."""

import gc
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnkeras._spawn import import_tensorflow_quietly

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))  # tests/photos.py, shared by tests and benchmarks
import_tensorflow_quietly()  # as every cnnkeras process: quiet, and without jax on TensorFlow

import keras  # noqa: E402

# what nearly every test imports, imported here so that it is part of the frozen heap
import cnnkeras.cli  # noqa: E402
import cnnkeras.export  # noqa: E402
import cnnkeras.train  # noqa: E402
import cnnkeras.tuning  # noqa: E402, F401

# The imported libraries are half a million objects that live as long as the process; frozen,
# the garbage collector stops walking them after every test (clear_session's collection took
# 1.2 s a test in each worker, 10% of the suite; 0.3 s against 0.01 s measured alone)
gc.freeze()


@pytest.fixture(autouse=True)
def _seeded_fresh_session():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session(free_memory=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def real_photos(tmp_path_factory):
    """270 real colour JPEGs in six classes (tests/photos.py: crops of the photographs that
    scikit-learn and matplotlib ship, 30 to 125 pixels), and one more whose header is fine
    but whose pixels are cut short, found only when the pipeline decodes it."""
    from photos import make_photo_folder

    root = make_photo_folder(tmp_path_factory.mktemp("real") / "photos", per_class=45)
    whole = (root / "sky" / "sky_000.jpg").read_bytes()
    (root / "sky" / "cut.jpg").write_bytes(whole[: int(len(whole) * 0.8)])
    return root


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Fail fast where pytest-xdist's --dist loadgroup stops grouping (xdist#1386: pytest 9.2
    keeps node ids where xdist 3.8 cannot tag them): each module-scoped fixture of a group
    would then be trained on both workers, silently adding minutes to CI."""
    if not getattr(config.option, "loadgroup", False):
        return
    lost = [item.nodeid for item in items if item.get_closest_marker("xdist_group")]
    lost = [nodeid for nodeid in lost if "@" not in nodeid]
    if lost:
        raise pytest.UsageError(f"--dist loadgroup lost the group of {lost[0]}; pin pytest")
