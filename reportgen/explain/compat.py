"""Every private Keras API reportgen relies on, in one place.

Walking a model layer by layer (see :mod:`reportgen.explain.graph`) needs four things Keras 3
keeps private. Each is wrapped here, and :func:`check` (run by ``tests/explain/test_compat.py``
on every Keras release the tests meet) fails with a message naming the call when a release
changes it. The tested range is pinned in ``pyproject.toml``.

========================================  =====================================================
call                                      used for
========================================  =====================================================
``Functional._run_through_graph``         calling every operation of a Functional model through
                                          reportgen's own function (the visitor)
``Functional._nodes_by_depth``            telling Functional models from subclassed ones
``KerasTensor._keras_history.operation``  the layer that produces a model output
``Model._build_shapes_dict``              the input shape of a Sequential model that was built
                                          but never called (reloaded from ``.keras``)
========================================  =====================================================
"""

from __future__ import annotations

from typing import Callable

import keras

#: The private calls, by the name :func:`check` reports.
CALLS = ("Functional._run_through_graph", "Functional._nodes_by_depth",
         "KerasTensor._keras_history.operation", "Model._build_shapes_dict")


class KerasCompatError(RuntimeError):
    """A private Keras API reportgen relies on changed in the installed Keras release."""


def run_through_graph(model: keras.Model, inputs: list, operation_fn: Callable):
    """Run the Functional ``model`` on ``inputs``, each operation called as
    ``operation_fn(op)(*args, **kwargs)``; return the model's outputs."""
    return model._run_through_graph(inputs, operation_fn=operation_fn)


def is_functional(model) -> bool:
    """True for a Functional model (one with a graph of nodes), False for a subclassed one."""
    return hasattr(model, "_nodes_by_depth")


def producing_layer(tensor):
    """The layer (operation) whose output ``tensor`` (a symbolic KerasTensor) is."""
    return tensor._keras_history.operation


def build_input_shape(model) -> tuple:
    """The input shape a model was built with (``()`` when unknown), for models whose
    ``inputs`` are undefined."""
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    return tuple(shapes.get("input_shape") or ())


def check() -> None:
    """Exercise every private call on a tiny model; raise :class:`KerasCompatError` naming the
    first that no longer behaves as reportgen expects."""
    import numpy as np

    inp = keras.Input((4, 4, 1))
    flatten, dense = keras.layers.Flatten(), keras.layers.Dense(2)
    model = keras.Model(inp, dense(flatten(inp)))
    seen = []

    def operation_fn(op):
        def call(*args, **kwargs):
            seen.append(op)
            return op(*args, **kwargs)
        return call

    def fail(call: str, detail: str):
        raise KerasCompatError(f"Keras {keras.__version__} changed {call}: {detail}; reportgen "
                               "is tested with the range pinned in pyproject.toml")

    try:
        out = run_through_graph(model, [np.ones((1, 4, 4, 1), np.float32)], operation_fn)
    except Exception as e:  # any failure of the private call is the finding
        fail(CALLS[0], f"{type(e).__name__}: {e}")
    if seen != [flatten, dense] or tuple(out.shape) != (1, 2):
        fail(CALLS[0], f"operation_fn saw {[op.name for op in seen]}, output shape "
                       f"{tuple(out.shape)}")
    if not is_functional(model):
        fail(CALLS[1], "a Functional model has no _nodes_by_depth")
    try:
        layer = producing_layer(model.outputs[0])
    except AttributeError as e:
        fail(CALLS[2], str(e))
    if layer is not dense:
        fail(CALLS[2], f"the output's producer is {layer!r}, not the last Dense layer")
    seq = keras.Sequential([keras.layers.Dense(2)])
    seq.build((None, 3))
    if build_input_shape(seq) != (None, 3):
        fail(CALLS[3], f"a Sequential built for (None, 3) reports {build_input_shape(seq)}")
