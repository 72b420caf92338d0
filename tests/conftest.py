"""Shared fixtures: tiny models built in code and small random images."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Builds in tests cache into a private folder, never the user's ~/.cache/reportgen.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="reportgen-test-cache-")

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
