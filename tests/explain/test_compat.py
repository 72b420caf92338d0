"""The private Keras calls reportgen relies on still behave on the installed Keras; a release
that changes one fails here, naming it."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.explain import compat


def test_every_private_call_behaves_as_expected():
    compat.check()  # raises KerasCompatError naming the call otherwise


def test_each_wrapper_on_a_nested_functional_model(keras):
    inner_in = keras.Input((4, 4, 1))
    inner = keras.Model(inner_in, keras.layers.Conv2D(2, 3, name="c")(inner_in), name="inner")
    inp = keras.Input((4, 4, 1))
    dense = keras.layers.Dense(3, name="head")
    model = keras.Model(inp, dense(keras.layers.Flatten()(inner(inp))))
    called = []

    def operation_fn(op):
        def call(*args, **kwargs):
            called.append(op.name)
            return op(*args, **kwargs)
        return call

    x = np.ones((2, 4, 4, 1), np.float32)
    out = compat.run_through_graph(model, [x], operation_fn)
    np.testing.assert_allclose(np.asarray(out), np.asarray(model(x)), atol=1e-6)
    assert called[0] == "inner" and called[-1] == "head"  # nested models are one operation
    assert compat.is_functional(model) and compat.is_functional(inner)
    assert not compat.is_functional(keras.layers.Dense(2))
    assert compat.producing_layer(model.outputs[0]) is dense
    seq = keras.Sequential([keras.layers.Dense(2)])
    seq.build((None, 5))
    assert compat.build_input_shape(seq) == (None, 5)


def _owner(keras):
    """The class that defines ``_run_through_graph`` for Functional models."""
    inp = keras.Input((2,))
    functional = type(keras.Model(inp, keras.layers.Dense(1)(inp)))
    return next(c for c in functional.__mro__ if "_run_through_graph" in vars(c))


def test_a_changed_signature_is_named(keras, monkeypatch):
    """Simulate a release that renamed ``operation_fn``: Keras's own calls still work, the
    call from reportgen fails, and check() names it."""
    owner = _owner(keras)
    original = owner._run_through_graph

    def renamed(self, inputs, **kwargs):
        fn = kwargs.get("operation_fn")
        if getattr(fn, "__module__", "").startswith("reportgen"):
            raise TypeError("_run_through_graph() got an unexpected keyword 'operation_fn'")
        return original(self, inputs, **kwargs)

    monkeypatch.setattr(owner, "_run_through_graph", renamed)
    with pytest.raises(compat.KerasCompatError, match=r"changed Functional\._run_through_graph"):
        compat.check()


def test_a_call_that_behaves_differently_is_named(keras, monkeypatch):
    """Simulate a release whose ``_run_through_graph`` no longer routes calls through
    ``operation_fn`` (it would silently drop guided backprop's gradient changes)."""
    owner = _owner(keras)
    original = owner._run_through_graph
    def ignores_it(self, inputs, **kwargs):
        if "operation_fn" in kwargs:
            kwargs["operation_fn"] = lambda op: op
        return original(self, inputs, **kwargs)

    monkeypatch.setattr(owner, "_run_through_graph", ignores_it)
    with pytest.raises(compat.KerasCompatError, match="operation_fn saw"):
        compat.check()
