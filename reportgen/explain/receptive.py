"""Receptive fields, composed analytically through the model graph.

Per spatial axis, a layer's units are described by ``size`` (input pixels a unit sees),
``stride`` (input pixels between neighbouring units) and ``offset`` (input coordinate of the
centre of unit 0; pixel centres are at integer coordinates 0..W-1). A layer with kernel k,
dilation d, stride s and padding p before the data maps (size, stride, offset) to::

    k_eff  = d (k - 1) + 1
    size'  = size + (k_eff - 1) * stride
    offset'= offset + ((k_eff - 1) / 2 - p) * stride
    stride'= stride * s

with p = 0 for "valid" and, for "same", p = floor(total / 2) where
total = max((ceil(n / s) - 1) s + k_eff - n, 0) for an input of n units (TensorFlow's padding,
the extra pixel going after). Convolutions (incl. depthwise and separable), pooling, zero
padding and cropping change the field; element-wise layers keep it; merges (Add, Concatenate, ...)
take the union of their inputs' fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import tensorflow as tf

from reportgen.explain.explainer import Explainer
from reportgen.explain.graph import ModelGraph


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a layer's units: (height, width) pairs of size, stride and offset."""

    size: tuple[float, float]
    stride: tuple[float, float]
    offset: tuple[float, float]

    def box(self, i: int, j: int, image_size: tuple[int, int] | None = None
            ) -> tuple[int, int, int, int]:
        """Input-space box of unit (row i, column j): (y0, x0, y1, x1), inclusive pixel
        indices, clipped to ``image_size`` (height, width) when given."""
        cy = self.offset[0] + i * self.stride[0]
        cx = self.offset[1] + j * self.stride[1]
        y0 = math.ceil(cy - (self.size[0] - 1) / 2 - 1e-9)
        y1 = math.floor(cy + (self.size[0] - 1) / 2 + 1e-9)
        x0 = math.ceil(cx - (self.size[1] - 1) / 2 - 1e-9)
        x1 = math.floor(cx + (self.size[1] - 1) / 2 + 1e-9)
        if image_size is not None:
            h, w = image_size
            y0, x0 = max(0, y0), max(0, x0)
            y1, x1 = min(h - 1, y1), min(w - 1, x1)
        return y0, x0, y1, x1


_Axis = tuple[float, float, float]  # size, stride, offset
_MERGE = (keras.layers.Add, keras.layers.Concatenate, keras.layers.Multiply,
          keras.layers.Average, keras.layers.Maximum, keras.layers.Minimum,
          keras.layers.Subtract)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _window(axis: _Axis, k: int, s: int, d: int, padding: str, n: int) -> _Axis:
    size, stride, offset = axis
    k_eff = d * (k - 1) + 1
    if padding == "valid":
        before = 0
    elif padding == "same":
        out = math.ceil(n / s)
        before = max((out - 1) * s + k_eff - n, 0) // 2
    else:
        raise ValueError(f"padding {padding!r} is not supported")
    return (size + (k_eff - 1) * stride, stride * s, offset + ((k_eff - 1) / 2 - before) * stride)


def _union(axes: list[_Axis]) -> _Axis:
    lo = min(o - (r - 1) / 2 for r, _, o in axes)
    hi = max(o + (r - 1) / 2 for r, _, o in axes)
    return (hi - lo + 1, axes[0][1], (lo + hi) / 2)


def _layer_field(layer, fields: list[tuple[_Axis, _Axis]], in_shape) -> tuple[_Axis, _Axis]:
    (fy, fx) = fields[0]
    if isinstance(layer, _MERGE):
        return _union([f[0] for f in fields]), _union([f[1] for f in fields])
    if isinstance(layer, keras.layers.Conv2DTranspose):
        raise ValueError(f"{layer.name}: transposed convolutions are not supported")
    if hasattr(layer, "kernel_size") or hasattr(layer, "pool_size"):
        k = _pair(getattr(layer, "kernel_size", None) or layer.pool_size)
        s = _pair(layer.strides)
        d = _pair(getattr(layer, "dilation_rate", 1))
        pad = layer.padding.lower()
        return (_window(fy, k[0], s[0], d[0], pad, in_shape[1]),
                _window(fx, k[1], s[1], d[1], pad, in_shape[2]))
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, _), (left, _) = layer.padding
        return (fy[0], fy[1], fy[2] - top * fy[1]), (fx[0], fx[1], fx[2] - left * fx[1])
    if isinstance(layer, keras.layers.Cropping2D):
        (top, _), (left, _) = layer.cropping
        return (fy[0], fy[1], fy[2] + top * fy[1]), (fx[0], fx[1], fx[2] + left * fx[1])
    if isinstance(layer, keras.layers.UpSampling2D):
        raise ValueError(f"{layer.name}: upsampling layers are not supported")
    return fy, fx


def receptive_field(model, layer: str) -> ReceptiveField:
    """Return the receptive field of the units of ``layer`` (``outer/inner`` in nested models).
    ``model`` may be an :class:`~reportgen.explain.explainer.Explainer`.

    Raises:
        ValueError: unknown layer, a layer whose output is not spatial, or an unsupported layer
            (transposed convolution, upsampling) on the way.
    """
    graph = model.graph if isinstance(model, Explainer) else ModelGraph(model)
    graph.layer(layer)
    if len(graph.layer_shapes[layer]) != 3:
        raise ValueError(f"layer {layer!r} has no spatial output")
    found = _walk(graph, {layer}, strict=True)
    if layer not in found:
        raise ValueError(f"layer {layer!r}: its field cannot be traced from the input")
    return found[layer]


def receptive_fields(model, layers) -> dict[str, ReceptiveField]:
    """The receptive fields of several ``layers`` in one walk through the model (one
    :func:`receptive_field` call each would walk it once per layer). A layer whose field
    cannot be traced (behind an unsupported layer, or not spatial) is left out."""
    graph = model.graph if isinstance(model, Explainer) else ModelGraph(model)
    return _walk(graph, set(layers), strict=False)


def _walk(graph: ModelGraph, layers: set[str], strict: bool) -> dict[str, ReceptiveField]:
    """Trace the fields from the input through the graph; return those of ``layers``. An
    unsupported layer raises (``strict``) or leaves its outputs, and what follows them,
    untraced."""
    fields: dict[int, tuple[_Axis, _Axis]] = {}
    keep = []  # tensors stay referenced so ids are not reused during the walk
    result = {}

    def visit(lyr, path, call, inputs):
        out = call()
        flat_in = [t for t in keras.tree.flatten(inputs) if hasattr(t, "shape")]
        keep.extend(flat_in + keras.tree.flatten(out))
        known = [fields[id(t)] for t in flat_in if id(t) in fields]
        if known and len(flat_in[0].shape) == 4:
            try:
                f = _layer_field(lyr, known, flat_in[0].shape)
            except ValueError:
                if strict:
                    raise
                f = None
            if f is not None and len(keras.tree.flatten(out)[0].shape) == 4:
                for t in keras.tree.flatten(out):
                    fields[id(t)] = f
        if path in layers and id(keras.tree.flatten(out)[0]) in fields:
            (ry, jy, oy), (rx, jx, ox) = fields[id(keras.tree.flatten(out)[0])]
            result[path] = ReceptiveField(size=(ry, rx), stride=(jy, jx), offset=(oy, ox))
        return out

    x = tf.zeros((1,) + graph.input_shape, tf.float32)
    keep.append(x)
    fields[id(x)] = ((1.0, 1.0, 0.0), (1.0, 1.0, 0.0))
    graph.forward(x, visit, logits=False)
    return result
