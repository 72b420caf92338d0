"""Open a SavedModel's serving graph at a convolution, so the CAM methods reach inside it.

A SavedModel loads as one ``keras.layers.TFSMLayer`` (see :mod:`reportgen.model.sources.savedmodel`)
whose layers reportgen cannot walk. :func:`split` freezes its serving function (variables become
constants) and prunes the graph in two: the input to the last convolution-like tensor (a 4-D
output of a ``Conv2D`` or ``DepthwiseConv2dNative`` op, or of the bias, batch-norm, activation,
residual-add or concatenation ops that follow one, with a spatial size larger than 1x1), and that
tensor to the class scores. A final ``Softmax`` or ``Sigmoid`` op is cut off, so explanations use
the logits as they do for a Keras model. Guided backprop and deconvnet run on copies of the parts
whose ``Relu`` and ``Relu6`` ops take their gradients (``gradient_override_map``), as the graph
walk changes a Keras model's ReLUs. The graph walk (:class:`~reportgen.explain.graph.
ModelGraph`) runs the two parts in place of the layer, so the tensor is a layer path
(``saved_model/<tensor>``) like any other. Where a SavedModel cannot be opened,
:class:`SavedModelError` says exactly why.
"""

from __future__ import annotations

import weakref

import keras
import tensorflow as tf

#: Ops whose output is a convolution's.
CONV_OPS = frozenset({"Conv2D", "DepthwiseConv2dNative", "_FusedConv2D"})
#: Ops that keep a convolution output's grid (its bias, batch norm, activation, residual add,
#: the concatenation of branches): their output may be explained instead of the raw conv.
GRID_OPS = frozenset({
    "BiasAdd", "Add", "AddV2", "AddN", "Sub", "Mul", "RealDiv", "Maximum", "Minimum",
    "FusedBatchNorm", "FusedBatchNormV3", "Relu", "Relu6", "Elu", "Selu", "LeakyRelu",
    "Sigmoid", "Tanh", "Softplus", "Softsign", "Erf", "Identity", "ConcatV2"})
#: Final ops cut off so the head returns logits: op type -> activation name.
FINAL_ACTIVATIONS = {"Softmax": "softmax", "Sigmoid": "sigmoid"}
#: ReLU ops whose gradient guided backprop and deconvnet change.
RELU_OPS = ("Relu", "Relu6")


def _gate(dy):
    return dy * tf.cast(dy > 0, dy.dtype)


@tf.RegisterGradient("ReportgenGuidedRelu")
def _guided_relu(op, dy):
    """Guided backprop: ``dy * (dy > 0) * (x > 0)``."""
    return _gate(dy) * tf.cast(op.outputs[0] > 0, dy.dtype)


@tf.RegisterGradient("ReportgenGuidedRelu6")
def _guided_relu6(op, dy):
    """Guided backprop through ReLU6: its own gradient, then ``dy > 0``."""
    x = op.inputs[0]
    return _gate(dy) * tf.cast((x > 0) & (x < 6), dy.dtype)


@tf.RegisterGradient("ReportgenDeconvRelu")
def _deconv_relu(op, dy):
    """Deconvnet: ``dy * (dy > 0)``, whatever the forward sign."""
    return _gate(dy)


#: Gradient overrides of each mode (see :func:`reportgen.explain.gradients.gradients`).
OVERRIDES = {"plain": {},
             "guided": {"Relu": "ReportgenGuidedRelu", "Relu6": "ReportgenGuidedRelu6"},
             "deconv": {"Relu": "ReportgenDeconvRelu", "Relu6": "ReportgenDeconvRelu"}}


class SavedModelError(ValueError):
    """A SavedModel whose serving graph cannot be opened at a convolution (the reason)."""


class Part:
    """One pruned part of a serving graph, called like a layer by the graph walk.

    Attributes:
        name: its name in layer paths (the tensor's op name, ``/`` written as ``.``).
        conv: whether its output is the convolution-like tensor.
        relus: how many ``Relu``/``Relu6`` ops it runs.
    """

    def __init__(self, name: str, fns, conv: bool, relus: int):
        self.name, self.conv, self.relus = name, conv, relus
        self._fns = fns  # mode -> the pruned function with that mode's ReLU gradients

    def __call__(self, *args, mode: str = "plain"):
        """The part on ``args`` (cast to the graph's dtypes: a mixed-precision graph runs in
        float16), as float32; ``mode`` "guided" or "deconv" changes its ReLU gradients."""
        fn = self._fns(mode)
        cast = [tf.cast(a, t.dtype) for a, t in zip(args, fn.inputs, strict=True)]
        return tf.cast(fn(*cast), tf.float32)


class Split:
    """A SavedModel's serving graph cut at ``tensor``.

    Attributes:
        tensor: the name of the explained tensor in the frozen serving graph.
        conv: :class:`Part` input (N, H, W, C) float32 -> the tensor (N, h, w, k) float32.
        head: :class:`Part` (input, tensor) -> the class scores before ``activation``.
        activation: "softmax", "sigmoid" or None: the final op cut off by ``head``.
        structure: the serving function's output structure (a dict of one tensor).
    """

    def __init__(self, tensor: str, conv: Part, head: Part, activation: str | None,
                 structure):
        self.tensor, self.conv, self.head = tensor, conv, head
        self.activation, self.structure = activation, structure

    def activate(self, out):
        """The SavedModel's own output from the head's ``out`` (its final activation)."""
        if self.activation is None:
            return out
        return tf.nn.softmax(out, axis=-1) if self.activation == "softmax" else tf.sigmoid(out)


_SPLITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def is_saved_model(layer) -> bool:
    """Whether ``layer`` is a SavedModel loaded as a Keras layer."""
    return isinstance(layer, keras.layers.TFSMLayer)


def split(layer) -> Split:
    """The serving graph of the SavedModel ``layer`` cut at its last convolution-like tensor,
    made once per layer (the layer is never modified).

    Raises:
        SavedModelError: it cannot be opened; the message says why. Any other error on the
            way (TensorFlow raises many kinds: ``as_graph_def`` of a frozen graph over 2 GB,
            an import that fails) is one too, so the model is then explained as a closed
            layer instead of failing the build.
    """
    if layer not in _SPLITS:
        try:
            _SPLITS[layer] = _split(layer)
        except SavedModelError as e:
            _SPLITS[layer] = e
        except Exception as e:  # TensorFlow raises many kinds; each is the reason to report
            _SPLITS[layer] = SavedModelError(f"its serving graph could not be opened "
                                             f"({type(e).__name__}: {_short(e)})")
    found = _SPLITS[layer]
    if isinstance(found, SavedModelError):
        raise found
    return found


def _concrete(layer):
    fn = layer.call_endpoint_fn
    if hasattr(fn, "graph"):
        return fn
    try:
        return fn.get_concrete_function()
    except (ValueError, TypeError) as e:
        raise SavedModelError(f"its endpoint {layer.call_endpoint!r} has no single traced "
                              f"function to read the graph of ({_short(e)})") from None


def _short(e: Exception) -> str:
    return " ".join(str(e).split())[:160]


def _frozen_graph(layer):
    """(graph_def, input name, output name, output structure) of the layer's serving function
    with its variables as constants. Freezing uses TensorFlow's private
    ``convert_variables_to_constants_v2`` (what ``tf.lite`` and TF-TRT use); a release that
    changes it makes this a :class:`SavedModelError` naming it."""
    fn = _concrete(layer)
    if len(fn.inputs) - len(fn.captured_inputs) != 1 or len(fn.outputs) != 1:
        raise SavedModelError("its serving function does not take one image batch and return "
                              "one output")
    try:
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2)

        frozen = convert_variables_to_constants_v2(fn)
    except Exception as e:  # TensorFlow raises many kinds; each is the reason to report
        raise SavedModelError("its serving function could not be frozen into one graph "
                              f"({type(e).__name__}: {_short(e)})") from None
    return (frozen.graph.as_graph_def(), frozen.inputs[0].name, frozen.outputs[0].name,
            fn.structured_outputs)


def _spatial(t) -> bool:
    """A 4-D tensor whose grid is larger than 1x1 (unknown sizes count as larger)."""
    shape = t.shape
    if shape.rank != 4:
        return False
    h, w = shape[1], shape[2]
    return h is None or w is None or h * w > 1


def conv_tensor(graph) -> tf.Tensor:
    """The last convolution-like tensor of ``graph`` (ops in creation order, which is
    topological): a conv op's 4-D output, or the output of a :data:`GRID_OPS` op fed by one
    with the same grid; of those with a grid larger than 1x1, the last.

    Raises:
        SavedModelError: no convolution, or every convolution-like output is 1x1.
    """
    conv_like: set[str] = set()
    last = None
    convs = 0
    for op in graph.get_operations():
        if not op.outputs:
            continue
        out = op.outputs[0]
        if op.type in CONV_OPS:
            convs += 1
            like = out.shape.rank == 4
        else:
            like = op.type in GRID_OPS and out.shape.rank == 4 and any(
                t.name in conv_like and t.shape[1:3] == out.shape[1:3] for t in op.inputs)
        if like:
            conv_like.add(out.name)
            if _spatial(out):
                last = out
    if not convs:
        raise SavedModelError("its serving graph has no convolution (no Conv2D or "
                              "DepthwiseConv2dNative op)")
    if last is None:
        raise SavedModelError(f"its convolutions ({convs}) all give outputs of 1x1 pixel "
                              "(or of unknown rank): there is no grid to explain")
    return last


def _final(graph, name: str) -> tuple[tf.Tensor, str | None]:
    """The output tensor ``name`` before a final softmax or sigmoid op (through identities),
    and that activation's name (None when there is none)."""
    t = graph.get_tensor_by_name(name)
    while t.op.type == "Identity" and t.op.inputs:
        t = t.op.inputs[0]
    act = FINAL_ACTIVATIONS.get(t.op.type)
    if act is None:
        return graph.get_tensor_by_name(name), None
    return t.op.inputs[0], act


def _imported(graph_def, mode: str):
    """The frozen graph imported into a ``wrap_function``, its ReLUs' gradients as ``mode``."""
    def imports():
        with tf.compat.v1.get_default_graph().gradient_override_map(OVERRIDES[mode]):
            tf.compat.v1.import_graph_def(graph_def, name="")

    return tf.compat.v1.wrap_function(imports, [])


def _cut(wrapped, in_name: str, tensor: str, out_name: str):
    """(input -> tensor, (input, tensor) -> logits) pruned from ``wrapped``."""
    g = wrapped.graph
    x, a = g.get_tensor_by_name(in_name), g.get_tensor_by_name(tensor)
    out, _ = _final(g, out_name)
    return wrapped.prune(x, a), wrapped.prune([x, a], out)


def _relus(fn) -> int:
    return sum(op.type in RELU_OPS for op in fn.graph.get_operations())


def _split(layer) -> Split:
    graph_def, in_name, out_name, structure = _frozen_graph(layer)
    wrapped = _imported(graph_def, "plain")
    a = conv_tensor(wrapped.graph)
    _, act = _final(wrapped.graph, out_name)
    try:
        plain = _cut(wrapped, in_name, a.name, out_name)
    except Exception as e:  # TensorFlow raises many kinds; each is the reason to report
        raise SavedModelError(f"its serving graph could not be cut at {a.op.name!r} "
                              f"({type(e).__name__}: {_short(e)})") from None
    cuts = {"plain": plain}

    def fns(k: int):
        def get(mode: str):
            if mode not in cuts:  # guided/deconv copies, made on first use
                cuts[mode] = _cut(_imported(graph_def, mode), in_name, a.name, out_name)
            return cuts[mode][k]
        return get

    name = a.op.name.removeprefix("StatefulPartitionedCall/").replace("/", ".")
    return Split(a.op.name, Part(name, fns(0), True, _relus(plain[0])),
                 Part("head", fns(1), False, _relus(plain[1])), act, structure)
