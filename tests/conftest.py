"""Shared fixtures: fixed seeds, quiet TensorFlow, and a fresh Keras session per test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seeded_fresh_session():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session(free_memory=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
