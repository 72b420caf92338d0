"""Every explanation test runs twice: all calls eager, and all calls compiled (tf.function).

Methods run eagerly for their first few calls and compiled after (see
``reportgen.explain.graph.TieredFunction``); small test inputs would otherwise only ever see the
eager tier.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, params=["eager", "compiled"])
def tier(request, monkeypatch):
    from reportgen.explain import graph

    monkeypatch.setattr(graph, "COMPILE_AFTER", 10**9 if request.param == "eager" else 0)
    return request.param
