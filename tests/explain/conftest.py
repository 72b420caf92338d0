"""Every explanation test runs twice: all calls eager, and all calls compiled (tf.function).

Methods run eagerly for their first few calls and compiled after (see
``reportgen.explain.graph.TieredFunction``); small test inputs would otherwise only ever see the
eager tier. The compiled tier is in the fast layer (``pytest``); the eager tier, the same
tests again, is marked slow and runs with everything else (``pytest -m 'slow or not slow'``,
which CI runs), so the fast layer stays within its three minutes.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, params=[pytest.param("eager", marks=pytest.mark.slow), "compiled"])
def tier(request, monkeypatch):
    from reportgen.explain import graph

    monkeypatch.setattr(graph, "COMPILE_AFTER", 10**9 if request.param == "eager" else 0)
    return request.param


@pytest.fixture
def random_split(rng):
    """``make(n, side, classes=2)``: a Split of ``n`` random ``side``-px RGB images drawn from
    this test's ``rng``, labelled 0, 1, ..., classes - 1 in turn, without boxes."""
    import numpy as np

    from reportgen.data import Split

    def make(n: int, side: int, classes: int = 2) -> Split:
        return Split(images=rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8),
                     labels=np.arange(n) % classes, paths=[f"{i}.png" for i in range(n)],
                     boxes=np.full((n, 4), np.nan, np.float32))

    return make


@pytest.fixture
def isolated(tier):
    """Run a test's gradient computations in a fresh interpreter (TensorFlow's oneDNN eager
    convolution gradients can crash a process: then this test fails, not the run). The code
    gets ``np``, ``keras`` and ``json`` imported, this test's tier set, and the seed 7; it
    prints its result as JSON on its last line, which is returned."""
    import json
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])

    def run(code: str):
        after = 10**9 if tier == "eager" else 0
        prelude = ("import json\nimport numpy as np\nimport keras\n"
                   f"from reportgen.explain import graph\ngraph.COMPILE_AFTER = {after}\n"
                   "keras.utils.set_random_seed(7)\n")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                              capture_output=True, text=True, env=env, timeout=600,
                              check=False)
        assert done.returncode == 0, done.stderr[-4000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run
