"""Receptive fields, composed analytically through the model graph.

Per spatial axis, the field of a tensor is a *span* function: units a..b of the tensor see the
input pixels lo..hi (inclusive; pixel centres at integer coordinates 0..W-1; units beyond the
edges, which padding adds, are continued past the image). A layer with kernel k, dilation d,
stride s and padding p before the data maps the span of its input ``f`` to::

    k_eff = d (k - 1) + 1
    span(a, b) = f(a s - p, b s - p + k_eff - 1)

with p = 0 for "valid" and, for "same", p = floor(total / 2) where
total = max((ceil(n / s) - 1) s + k_eff - n, 0) for an input of n units (TensorFlow's padding,
the extra pixel going after). Such layers keep the field *affine*: every unit sees ``size``
pixels, units are ``stride`` pixels apart and unit 0 is centred on ``offset``. Convolutions
(incl. depthwise and separable), pooling, zero padding and cropping are of this kind.
Upsampling and resizing from n to m units (nearest or bilinear, TensorFlow's half-pixel
centres) make unit i read the input at ``(i + 0.5) n / m - 0.5``: nearest the pixel
``floor((i + 0.5) n / m)`` (``i // s`` for an integer factor s), bilinear the pixels at the
floor and the ceiling of that coordinate, clamped to the edges; the field is then no longer the
same for every unit, and :meth:`ReceptiveField.box` gives each unit's own.

Any other operation whose output keeps its input's spatial grid (the same height and width in
axes 1 and 2: element-wise layers and ops, batch and layer normalization, rescaling, casts,
channel slicing, stacking or concatenating on the channel axis, Dense on the channel axis)
keeps the field; merges (Add, Concatenate, Multiply, ...) take the union of their inputs'
fields. Inputs broadcast from a smaller grid (a squeeze-and-excitation branch's 1x1 scale) are
global context and left out. An operation that changes the grid in another way (a transposed
convolution, a reshape, a transpose of the spatial axes) cannot be followed: what comes after it
has no field, and :func:`receptive_field` says why.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable

import keras
import tensorflow as tf

from reportgen.explain.explainer import Explainer
from reportgen.explain.graph import ModelGraph

#: span(a, b) -> (lo, hi): the input pixels seen by units a..b of one axis.
Span = Callable[[int, int], tuple[int, int]]


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a layer's units: (height, width) pairs of size, stride and offset.

    For an affine field (no upsampling or resizing on the way) these describe every unit
    exactly. Otherwise ``size`` is the largest field of a unit, ``stride`` the mean distance
    between neighbouring units (the product of the layers' scale factors, e.g. 0.5 after a
    2x upsampling) and ``offset`` the centre of unit 0's field; :meth:`box` is exact either
    way."""

    size: tuple[float, float]
    stride: tuple[float, float]
    offset: tuple[float, float]
    #: Per axis, the exact span function (None: the affine description is exact).
    spans: tuple[Span, Span] | None = field(default=None, compare=False, repr=False)

    def box(self, i: int, j: int, image_size: tuple[int, int] | None = None
            ) -> tuple[int, int, int, int]:
        """Input-space box of unit (row i, column j): (y0, x0, y1, x1), inclusive pixel
        indices, clipped to ``image_size`` (height, width) when given."""
        if self.spans is not None:
            (y0, y1), (x0, x1) = self.spans[0](i, i), self.spans[1](j, j)
        else:
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


class _Axis:
    """The field of one spatial axis of a tensor: units a..b of it read units
    ``a * scale + lo`` .. ``b * scale + hi`` of a *base* whose span is known: the input pixels
    themselves (``base`` None: an affine field, composed in closed form however deep the
    model) or the output of the last upsampling, resizing or merge of differing bases on the
    way (a memoized span function). ``stride``: input pixels between neighbouring units."""

    def __init__(self, scale: int = 1, lo: int = 0, hi: int = 0, base: Span | None = None,
                 stride: float = 1.0):
        self.scale, self.lo, self.hi, self.base, self.stride = scale, lo, hi, base, stride

    @property
    def affine(self) -> bool:
        return self.base is None

    def span(self, a: int, b: int) -> tuple[int, int]:
        """The input pixels (lo, hi) seen by units a..b."""
        a, b = a * self.scale + self.lo, b * self.scale + self.hi
        return (a, b) if self.base is None else self.base(a, b)

    def then(self, s: int, lo: int, hi: int) -> _Axis:
        """The axis of a tensor whose units a..b read units a s + lo .. b s + hi of this one."""
        return _Axis(self.scale * s, self.lo + lo * self.scale, self.hi + hi * self.scale,
                     self.base, self.stride * s)

    def describe(self, n: int) -> tuple[float, float, float]:
        """(size, stride, offset) of the ``n`` units of this axis (see
        :class:`ReceptiveField`)."""
        lo, hi = self.span(0, 0)
        size = hi - lo + 1
        if not self.affine:
            size = max(top - low + 1 for low, top in (self.span(i, i) for i in range(n)))
        return float(size), float(self.stride), (lo + hi) / 2


def _based(span: Span, stride: float) -> _Axis:
    """An axis whose units have the (memoized) span function ``span``."""
    return _Axis(base=functools.lru_cache(maxsize=None)(span), stride=stride)


_INPUT = _Axis()


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _window(axis: _Axis, k: int, s: int, d: int, padding: str, n: int) -> _Axis:
    k_eff = d * (k - 1) + 1
    if padding == "valid":
        before = 0
    elif padding == "same":
        out = math.ceil(n / s)
        before = max((out - 1) * s + k_eff - n, 0) // 2
    else:
        raise ValueError(f"padding {padding!r} is not supported")
    return axis.then(s, -before, k_eff - 1 - before)


def _resize(axis: _Axis, n: int, m: int, method: str) -> _Axis:
    """Resizing ``n`` units to ``m`` (TensorFlow's half-pixel centres): unit i reads the
    input at (i + 0.5) n / m - 0.5; nearest the pixel floor((i + 0.5) n / m), bilinear the
    floor and the ceiling of that coordinate, clamped to the edges (exact integer
    arithmetic)."""
    if method == "nearest":
        def first(i):
            return min(max(((2 * i + 1) * n) // (2 * m), 0), n - 1)
        last = first
    elif method == "bilinear":
        def first(i):  # floor(((2i + 1) n - m) / 2m)
            return min(max(((2 * i + 1) * n - m) // (2 * m), 0), n - 1)

        def last(i):  # its ceiling
            return min(max(-((m - (2 * i + 1) * n) // (2 * m)), 0), n - 1)
    else:
        raise ValueError(f"{method} interpolation is not supported (nearest and bilinear "
                         "are)")
    if n == m:
        return axis
    return _based(lambda a, b: axis.span(first(a), last(b)), axis.stride * n / m)


def _union(axes: list[_Axis]) -> _Axis:
    """The union of several fields of one grid (exact: every span is (lo(a), hi(b)) with lo
    and hi non-decreasing, so the union of a shared base's ranges is one range of it)."""
    first = axes[0]
    if all(ax.base is first.base and ax.scale == first.scale for ax in axes):
        return _Axis(first.scale, min(ax.lo for ax in axes), max(ax.hi for ax in axes),
                     first.base, first.stride)

    def span(a, b):
        spans = [ax.span(a, b) for ax in axes]
        return min(lo for lo, _ in spans), max(hi for _, hi in spans)

    return _based(span, first.stride)


_Field = tuple[_Axis, _Axis]


def _grid(t) -> tuple | None:
    """(height, width) of a tensor laid out (N, H, W, ...), None for fewer axes."""
    shape = getattr(t, "shape", None)
    return tuple(shape[1:3]) if shape is not None and len(shape) >= 3 else None


def _moves_pixels(op) -> bool:
    """Whether ``op`` keeps its output's shape but moves pixels across the grid (a transpose
    of the spatial axes, a flip, a roll, a rotation)."""
    if isinstance(op, keras.layers.Permute):
        return tuple(op.dims[:2]) != (1, 2)
    name = type(op).__name__
    if name == "Transpose":
        axes = getattr(op, "axes", None)
        return axes is None or tuple(axes[:3]) != (0, 1, 2)
    return name in ("Swapaxes", "Moveaxis", "Flip", "Roll", "Rot90")


def _layer_field(layer, known: list[tuple[_Field, tuple]], out_grid: tuple) -> _Field:
    """The field of ``layer``'s output from its traced inputs ``known`` ((field, input
    grid) pairs, the first being the data input) and its output grid.

    Raises:
        ValueError: the layer changes the grid in a way the field cannot follow.
    """
    (fy, fx), grid = known[0]
    if isinstance(layer, keras.layers.Conv2DTranspose):
        raise ValueError(f"{layer.name}: transposed convolutions are not supported")
    if hasattr(layer, "kernel_size") or hasattr(layer, "pool_size"):
        k = _pair(getattr(layer, "kernel_size", None) or layer.pool_size)
        s = _pair(layer.strides)
        d = _pair(getattr(layer, "dilation_rate", 1))
        pad = layer.padding.lower()
        return (_window(fy, k[0], s[0], d[0], pad, grid[0]),
                _window(fx, k[1], s[1], d[1], pad, grid[1]))
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, _), (left, _) = layer.padding
        return fy.then(1, -top, -top), fx.then(1, -left, -left)
    if isinstance(layer, keras.layers.Cropping2D):
        (top, _), (left, _) = layer.cropping
        return fy.then(1, top, top), fx.then(1, left, left)
    if isinstance(layer, keras.layers.UpSampling2D) or (
            isinstance(layer, keras.layers.Resizing) and out_grid != grid):
        method = layer.interpolation
        if getattr(layer, "crop_to_aspect_ratio", False) or getattr(
                layer, "pad_to_aspect_ratio", False):
            raise ValueError(f"{layer.name}: resizing to another aspect ratio is not supported")
        try:
            return (_resize(fy, grid[0], out_grid[0], method),
                    _resize(fx, grid[1], out_grid[1], method))
        except ValueError as e:
            raise ValueError(f"{layer.name}: {e}") from None
    same = [f for f, g in known if g == out_grid]  # a broadcast 1x1 input is global context
    if not same:
        raise ValueError(f"{layer.name} changes the spatial grid from {grid[0]}x{grid[1]} "
                         f"to {out_grid[0]}x{out_grid[1]}")
    if _moves_pixels(layer):
        raise ValueError(f"{layer.name} moves pixels across the spatial grid")
    return _union([f[0] for f in same]), _union([f[1] for f in same])


def receptive_field(model, layer: str) -> ReceptiveField:
    """Return the receptive field of the units of ``layer`` (``outer/inner`` in nested models).
    ``model`` may be an :class:`~reportgen.explain.explainer.Explainer`.

    Raises:
        ValueError: unknown layer, a layer whose output is not spatial, or a layer on the
            way whose field cannot be followed (the message names it and says why).
    """
    graph = model.graph if isinstance(model, Explainer) else ModelGraph(model)
    graph.layer(layer)
    if len(graph.layer_shapes[layer]) != 3:
        raise ValueError(f"layer {layer!r} has no spatial output")
    found, why = _walk(graph, {layer})
    if layer not in found:
        raise ValueError(f"layer {layer!r}: its field cannot be traced from the input"
                         + (f" ({why[layer]})" if layer in why else ""))
    return found[layer]


def receptive_fields(model, layers) -> dict[str, ReceptiveField]:
    """The receptive fields of several ``layers`` in one walk through the model (one
    :func:`receptive_field` call each would walk it once per layer). A layer whose field
    cannot be traced (behind an unsupported layer, or not spatial) is left out."""
    graph = model.graph if isinstance(model, Explainer) else ModelGraph(model)
    return _walk(graph, set(layers))[0]


def _walk(graph: ModelGraph, layers: set[str]
          ) -> tuple[dict[str, ReceptiveField], dict[str, str]]:
    """Trace the fields from the input through the graph; return those of ``layers`` and,
    for those of ``layers`` left without one, the reason (the first operation on the way whose
    field could not be followed)."""
    fields: dict[int, _Field] = {}
    lost: dict[int, str] = {}  # tensors behind an operation the field cannot follow: why
    keep = []  # tensors stay referenced so ids are not reused during the walk
    result, why = {}, {}

    def visit(lyr, path, call, inputs):
        out = call()
        flat_in = [t for t in keras.tree.flatten(inputs) if hasattr(t, "shape")]
        flat_out = [t for t in keras.tree.flatten(out) if hasattr(t, "shape")]
        keep.extend(flat_in + flat_out)
        known = [(fields[id(t)], _grid(t)) for t in flat_in if id(t) in fields]
        out_grid = _grid(flat_out[0]) if flat_out else None
        reason = next((lost[id(t)] for t in flat_in if id(t) in lost
                       and (not known or _grid(t) == out_grid)), None)
        if known and out_grid is not None and reason is None:
            try:
                f = _layer_field(lyr, known, out_grid)
                fields.update((id(t), f) for t in flat_out if _grid(t) == out_grid)
            except ValueError as e:
                reason = str(e)
        if reason is not None:
            lost.update((id(t), reason) for t in flat_out)
        if path in layers and flat_out:
            t = flat_out[0]
            if id(t) in fields:
                fy, fx = fields[id(t)]
                (sy, jy, oy), (sx, jx, ox) = fy.describe(out_grid[0]), fx.describe(out_grid[1])
                spans = None if fy.affine and fx.affine else (fy.span, fx.span)
                result[path] = ReceptiveField(size=(sy, sx), stride=(jy, jx),
                                              offset=(oy, ox), spans=spans)
            elif id(t) in lost:
                why[path] = lost[id(t)]
        return out

    x = tf.zeros((1,) + graph.input_shape, tf.float32)
    keep.append(x)
    fields[id(x)] = (_INPUT, _INPUT)
    graph.forward(x, visit, logits=False)
    return result, why
