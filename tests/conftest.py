"""Shared fixtures: tiny models built in code and small random images."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def keras():
    import keras

    keras.utils.set_random_seed(7)
    return keras
