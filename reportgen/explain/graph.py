"""Run a Keras model layer by layer, to capture or replace any layer's output.

Explanations need the activations of a layer that may sit inside a nested model (transfer
learning: ``base/block_16_project``), the class logits even when the model ends in a softmax, and
ReLU gradients changed for guided backprop. Building sub-models from inner layers fails for nested
models ("Graph disconnected") and for Sequential models loaded from ``.keras``, and swapping
``layer.activation`` mutates the caller's model. Instead, :class:`ModelGraph` walks the model's own
graph (``Sequential.layers`` in order, a Functional model's nodes by depth, recursing into nested
models) and calls each layer itself, so a *visitor* can observe or replace every call. Layers
whose activation must be removed are called through private copies (*twins*) whose weights are
refreshed from the original before each use; the caller's model is never changed.
"""

from __future__ import annotations

import weakref
from typing import Callable

import keras
import tensorflow as tf

from reportgen.explain import compat, savedmodel

#: Eager work a function runs before it is compiled, in images, each call counted as
#: :data:`CALL_IMAGES` more (see :func:`eager_work`). On the benchmarks' small 64 px CNN an eager
#: call costs about 20 ms of Python overhead plus 1.4 ms an image against 0.4 ms compiled, and a
#: trace about as much as six eager calls' overhead, so tracing pays once about this much work
#: has run eagerly: short runs (a few sample images, the sanity check's 16) never pay for a trace,
#: a loop over batches of 64 pays for one at its second call. Functions that take gradients
#: never run eagerly (see :class:`TieredFunction`).
COMPILE_AFTER = 96

#: An eager call's Python overhead, in images run eagerly (see :data:`COMPILE_AFTER`).
CALL_IMAGES = 16

#: visitor(layer, path, call, inputs) -> output. ``call()`` runs the layer as the model would.
Visitor = Callable[[keras.layers.Layer, str, Callable[[], tf.Tensor], tuple], tf.Tensor]


def _default_visitor(layer, path, call, inputs):
    return call()


def _float32(t):
    """``t`` cast to float32 when it is a tensor of another float type (mixed precision),
    else ``t`` itself."""
    dtype = getattr(t, "dtype", None)
    if isinstance(dtype, tf.DType) and dtype.is_floating and dtype != tf.float32:
        return tf.cast(t, tf.float32)
    return t


def _is_conv(layer) -> bool:
    """A conv layer, or the part of a SavedModel's serving graph that ends in a convolution."""
    return hasattr(layer, "kernel_size") or isinstance(layer, savedmodel.Part) and layer.conv


def _is_graph_model(layer) -> bool:
    return isinstance(layer, keras.Model) and (
        isinstance(layer, keras.Sequential) or compat.is_functional(layer))


def _activation_name(layer) -> str | None:
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    name = getattr(act, "__name__", None) or type(act).__name__
    return name.lower()


def relu_kind(layer) -> float | None:
    """Return the ReLU cap of ``layer`` (inf for a plain ReLU, 6 for ReLU6), or None when the
    layer applies no plain ReLU (leaky or thresholded ReLUs count as none)."""
    if isinstance(layer, keras.layers.ReLU):
        if float(getattr(layer, "negative_slope", 0) or 0) != 0:
            return None
        if float(getattr(layer, "threshold", 0) or 0) != 0:
            return None
        cap = getattr(layer, "max_value", None)
        return float("inf") if cap is None else float(cap)
    if isinstance(layer, keras.layers.Layer) and not isinstance(layer, keras.Model):
        name = _activation_name(layer)
        if name == "relu":
            return float("inf")
        if name == "relu6":
            return 6.0
    return None


def is_softmax_layer(layer) -> bool:
    """True for ``Softmax`` layers and ``Activation("softmax")``."""
    if isinstance(layer, keras.layers.Softmax):
        return True
    return isinstance(layer, keras.layers.Activation) and _activation_name(layer) == "softmax"


#: What a classifier's output holds, and so how reportgen reads it (see :func:`head_kind`).
HEAD_KINDS = {
    "softmax": "class probabilities from a softmax; explanations use the logits before it",
    "logits": "class logits (no final activation); probabilities are their softmax",
    "binary": "one sigmoid unit p for two classes: probabilities [1 - p, p]; class 1 is "
              "explained by the logit z, class 0 by -z",
    "binary_logit": "one linear unit z for two classes (a logit): probabilities "
                    "[1 - sigmoid(z), sigmoid(z)]; class 1 is explained by z, class 0 by -z",
    "sigmoid": "independent sigmoids, one per class: probabilities are the sigmoids (they need "
               "not sum to 1), the predicted class the highest; explanations use each logit",
    "probabilities": "class probabilities from an opaque final layer (a SavedModel) whose "
                     "softmax cannot be bypassed: explanations use the class probabilities",
}


def _final_activation(layer) -> str | None:
    """"softmax", "sigmoid" or None for the last layer of a classifier (of a SavedModel: its
    serving graph's final op, when the graph can be opened)."""
    if savedmodel.is_saved_model(layer):
        try:
            return savedmodel.split(layer).activation
        except savedmodel.SavedModelError:
            return None
    if is_softmax_layer(layer):
        return "softmax"
    name = _activation_name(layer)
    if name in ("softmax", "sigmoid"):
        return name
    return None


def head_kind(final_layer, width: int) -> str:
    """The kind of classifier output (a key of :data:`HEAD_KINDS`) produced by
    ``final_layer`` with ``width`` units: one unit is a binary classifier (sigmoid, or its
    logit when linear); several sigmoids are independent; otherwise softmax or logits."""
    act = _final_activation(final_layer) if final_layer is not None else None
    if width == 1 and act != "softmax":
        return "binary" if act == "sigmoid" else "binary_logit"
    if act == "sigmoid":
        return "sigmoid"
    return "softmax" if act == "softmax" else "logits"


def is_depthwise_grouped(layer, inputs: tuple) -> bool:
    """Whether ``layer`` is a 2-D ``Conv2D`` with one group per input channel (ConvNeXt's
    depthwise convolutions, ``Conv2D(C, 7, groups=C)``), channels last, on one 4-D input, with
    equal strides or no dilation (what ``tf.nn.depthwise_conv2d`` computes).

    Keras runs a grouped convolution on TensorFlow through an XLA-compiled function: eagerly
    it is retraced and recompiled on every call, and in a graph each one is an XLA cluster
    compiled per function. :func:`depthwise_call` computes the same without XLA."""
    if type(layer) is not keras.layers.Conv2D or getattr(layer, "groups", 1) <= 1:
        return False
    if layer.data_format != "channels_last" or len(inputs) != 1:
        return False
    shape = getattr(inputs[0], "shape", None)
    if shape is None or len(shape) != 4 or shape[-1] != layer.groups:
        return False
    strides, dilation = tuple(layer.strides), tuple(layer.dilation_rate)
    return strides[0] == strides[1] and (dilation == (1, 1) or strides == (1, 1))


def depthwise_call(layer, x):
    """``layer(x)`` for a layer of :func:`is_depthwise_grouped`, as ``tf.nn.depthwise_conv2d``
    (equal to float rounding: about 1e-7 relative).

    Args:
        layer: a ``Conv2D`` with ``groups`` equal to the input channels C and F filters (a
            kernel of shape (kh, kw, 1, F), F a multiple of C).
        x: (N, H, W, C) float.

    Returns:
        (N, H', W', F) in the layer's compute dtype: the convolution, plus the bias,
        through the layer's activation.
    """
    kh, kw, _, filters = layer.kernel.shape
    channels = int(x.shape[-1])
    x = tf.cast(x, layer.compute_dtype)  # as the layer's own call (mixed precision)
    # Group c's filters are output channels c*m .. c*m + m - 1: depthwise channel c, multiplier m.
    kernel = tf.reshape(tf.cast(layer.kernel, x.dtype), (kh, kw, channels, filters // channels))
    s, d = tuple(layer.strides), tuple(layer.dilation_rate)
    out = tf.nn.depthwise_conv2d(x, kernel, (1, s[0], s[1], 1), layer.padding.upper(),
                                 dilations=d)
    if layer.use_bias:
        out = out + tf.cast(layer.bias, out.dtype)
    return layer.activation(out) if layer.activation is not None else out


def eager_work(calls: int, images: int) -> int:
    """The cost of ``calls`` eager calls on ``images`` images in all, in images
    (:data:`CALL_IMAGES` an eager call)."""
    return images + CALL_IMAGES * calls


def _images_in(args) -> int:
    """The batch of a call: the length of its first argument (1 for a scalar)."""
    shape = getattr(args[0], "shape", None) if args else None
    return int(shape[0]) if shape is not None and len(shape) and shape[0] is not None else 1


class TieredFunction:
    """A function of tensors run eagerly while the work it has run eagerly, over all its calls,
    stays within :data:`COMPILE_AFTER`, then as a ``tf.function`` (traced once for
    ``signature``, without autograph: the graph walk is plain Python over a fixed structure).
    Both tiers run the same code, so results agree to float rounding. The functions live as
    long as their explainer (:meth:`ModelGraph.function`), so the choice follows the work of
    all its calls, not one call's size.

    A function that takes gradients (``tape=True``) is compiled from its first call and never
    runs eagerly: TensorFlow 2.21 with oneDNN (its default on CPUs) crashes the process (a
    segmentation fault or abort) in the filter gradient (``Conv2DBackpropFilter``) of a 1x1,
    stride-2 convolution with few channels, which an eager tape computes even when only the
    input gradient is asked for; a compiled function prunes it (nothing asks for a kernel's
    gradient). Setting ``TF_ENABLE_ONEDNN_OPTS=0`` would come too late when the caller imported
    TensorFlow before reportgen.

    Args:
        fn: the Python function (tensors in, tensors out; the first argument a batch, whose
            length counts as the call's images).
        signature: the ``tf.TensorSpec`` list of its arguments.
        tape: whether ``fn`` takes gradients (then it is never called eagerly).
    """

    def __init__(self, fn: Callable, signature: list, tape: bool = False):
        self.python = fn
        self.signature = signature
        self.tape = tape
        self.compiled: Callable | None = None
        #: Calls run eagerly, and their images.
        self.eager_calls = 0
        self.eager_images = 0
        #: Seconds its trace took, as the planner's probe measured it (None: not measured).
        self.trace_s: float | None = None

    @property
    def eager(self) -> bool:
        """Whether this function may run eagerly (it takes no gradients)."""
        return not self.tape

    def allows(self, calls: int, images: int) -> bool:
        """Whether ``calls`` more calls on ``images`` images in all may still run eagerly."""
        seen = eager_work(self.eager_calls, self.eager_images)
        return self.eager and seen + eager_work(calls, images) <= COMPILE_AFTER

    def expect(self, calls: int, images: int = 0) -> None:
        """Compile now when ``calls`` more calls on ``images`` images in all (the copies the
        function makes of them included) would pass :data:`COMPILE_AFTER`."""
        if self.compiled is None and not self.allows(calls, images):
            self._compile()

    def _compile(self) -> Callable:
        if self.compiled is None:
            self.compiled = tf.function(self.python, input_signature=self.signature,
                                        autograph=False)
        return self.compiled

    def __call__(self, *args):
        images = _images_in(args)
        if self.compiled is None and self.allows(1, images):
            self.eager_calls += 1
            self.eager_images += images
            return self.python(*args)
        return self._compile()(*args)


class ModelGraph:
    """A layer-by-layer runner over one Keras model (never modified).

    Args:
        model: a Sequential or Functional Keras model, possibly with nested models.
        output_index: which model output holds the class scores (multi-output models).
        input_shape: (H, W, C) of the images, for a model whose input size is variable
            (``Input((None, None, 3))``); its fixed dimensions must agree.
    """

    def __init__(self, model: keras.Model, output_index: int = 0,
                 input_shape: tuple | None = None):
        if not _is_graph_model(model):
            raise TypeError(f"{type(model).__name__} is a subclassed model; explanations need a "
                            "Sequential or Functional model")
        self._model = weakref.ref(model)
        #: The model held strongly, until :meth:`hold_weakly` (then only the caller holds it).
        self._held: keras.Model | None = model
        self.output_index = output_index
        self._given_shape = tuple(input_shape) if input_shape is not None else None
        self._twins: dict[tuple, tuple[keras.layers.Layer, keras.layers.Layer]] = {}
        self._final = self._final_chain(model, output_index)
        #: {path: output shape} and {path: layer} of every layer the walk calls (filled in by
        #: :meth:`_trace_shapes` below).
        self._shapes: dict[str, tuple] = {}
        self._layers: dict[str, keras.layers.Layer] = {}
        #: {path of a SavedModel layer: why its serving graph could not be opened}.
        self.closed: dict[str, str] = {}
        #: The output's kind (a key of :data:`HEAD_KINDS`), from the final layer's activation
        #: and the output's width.
        self.head = "logits"
        #: :class:`TieredFunction` s of the explanation methods, keyed by the method's options.
        self.functions: dict = {}
        self._trace_shapes()

    def function(self, key, make: Callable[[], Callable], *extra_specs,
                 tape: bool = False) -> TieredFunction:
        """Return the :class:`TieredFunction` stored under ``key``, creating it from ``make()``
        on first use. Its signature is the input batch (None, H, W, C) float32 followed by
        ``extra_specs``; ``tape``: the function takes gradients (it is always compiled)."""
        if key not in self.functions:
            h, w, c = self.input_shape
            spec = [tf.TensorSpec([None, h, w, c], tf.float32), *extra_specs]
            self.functions[key] = TieredFunction(make(), spec, tape)
        return self.functions[key]

    @property
    def model(self) -> keras.Model:
        """The explained model.

        Raises:
            ReferenceError: the graph holds it weakly and it was deleted.
        """
        model = self._model()
        if model is None:
            raise ReferenceError("the model of this explainer was deleted")
        return model

    def hold_weakly(self) -> None:
        """Stop keeping the model alive: a cache of explainers may then outlive no model
        (the compiled functions reach the model's layers, never the model itself)."""
        self._held = None

    # -- structure ------------------------------------------------------------------------------

    @staticmethod
    def _final_chain(model, output_index: int) -> list:
        """Return the layers producing the model output, outermost first, into nested models."""
        chain = []
        current, idx = model, output_index
        while _is_graph_model(current):
            if isinstance(current, keras.Sequential):
                last = current.layers[-1]
            else:
                last = compat.producing_layer(current.outputs[idx])
            chain.append(last)
            current, idx = last, 0
        return chain

    @property
    def final_layers(self) -> list:
        """The layers producing the explained output, outermost first, into nested models
        (the last is the one whose own call computes it)."""
        return list(self._final)

    @property
    def input_shape(self) -> tuple:
        """(H, W, C) of the model's first input."""
        try:
            shape = tuple(self.model.inputs[0].shape)
        except (AttributeError, ValueError, IndexError):
            shape = compat.build_input_shape(self.model)
        if len(shape) == 4 and self._given_shape is not None:
            given = self._given_shape
            if any(d is not None and d != g for d, g in zip(shape[1:], given, strict=False)):
                raise ValueError(f"images of shape {given} do not fit the model input {shape}")
            shape = (shape[0],) + tuple(given)
        if len(shape) != 4 or any(d is None for d in shape[1:]):
            raise ValueError(f"model input shape {shape} is not a fixed-size image batch; "
                             "give the image size (input_shape)")
        return tuple(int(d) for d in shape[1:])

    def _trace_shapes(self) -> None:
        """Run one zero image through the graph and record every layer's output shape."""
        shapes: dict[str, tuple] = {}
        layers: dict[str, keras.layers.Layer] = {}

        def visit(layer, path, call, inputs):
            out = call()
            layers[path] = layer
            flat = keras.tree.flatten(out)
            shapes[path] = tuple(flat[0].shape[1:]) if len(flat) == 1 else ()
            return out

        x = tf.zeros((1,) + self.input_shape, tf.float32)
        out = self._output(self._run(self.model, x, visit, "", self._final[-1] if self._final
                                     else None))  # also builds the linear twin of the head
        self.head = head_kind(self._final[-1] if self._final else None, int(out.shape[-1]))
        if self.opaque and not self.opened:
            p = tf.convert_to_tensor(out)  # opaque: do its outputs look like probabilities?
            if bool(tf.reduce_all(p >= 0)) and bool(tf.reduce_all(
                    tf.abs(tf.reduce_sum(p, axis=-1) - 1.0) < 1e-3)):
                self.head = "probabilities"
        self._shapes, self._layers = shapes, layers

    @property
    def layer_shapes(self) -> dict[str, tuple]:
        """{layer path: output shape without batch axis}, in execution order."""
        return self._shapes

    def layer(self, path: str) -> keras.layers.Layer:
        """Return the layer at ``path`` (``outer/inner`` for nested models).

        Raises:
            ValueError: no such layer; the message lists the valid 4-D layer paths.
        """
        if path not in self._layers:
            conv = [p for p, s in self.layer_shapes.items() if len(s) == 3]
            raise ValueError(f"no layer {path!r} in model {self.model.name!r}; layers with 4-D "
                             f"outputs: {', '.join(conv[-12:])}")
        return self._layers[path]

    def _spatial_layers(self) -> list[str]:
        """Paths of layers with a 4-D output larger than 1x1 at or after the first convolution
        (so input scaling layers never count), in execution order; nested models themselves
        are left out (their inner layers are listed)."""
        paths = list(self.layer_shapes)
        first_conv = next((i for i, p in enumerate(paths) if _is_conv(self._layers[p])), None)
        if first_conv is None:
            return []
        return [p for p in paths[first_conv:]
                if len(self.layer_shapes[p]) == 3 and self.layer_shapes[p][0] is not None
                and self.layer_shapes[p][0] * self.layer_shapes[p][1] > 1
                and not isinstance(self._layers[p], keras.Model)]

    def default_layer(self) -> str:
        """Return the path of the explained layer when none is given: the output of the last
        convolution after its activation (searching nested models). From the last layer with
        a convolution kernel and a 4-D output larger than 1x1, the layers that follow it on
        the same grid (batch normalization, activations, a residual Add, a cell's
        concatenation, ...) are followed up to the first that changes the grid, and the last
        of them that is not a pooling layer is taken: VGG16 is explained at ``block5_conv3``
        (14x14 at 224 px), not ``block5_pool``; a conv -> BatchNorm -> ReLU -> pooling block
        at the ReLU's output; NASNet at its last cell's output.

        Raises:
            ValueError: the model has no convolutional layer.
        """
        candidates = self._spatial_layers()
        if not candidates and self.closed:
            raise ValueError("; ".join(f"the SavedModel {p!r} cannot be opened at a "
                                       f"convolution: {why}" for p, why in self.closed.items()))
        if not candidates:
            raise ValueError(f"model {self.model.name!r} has no conv layer (no layer with a "
                             "4-D output larger than 1x1 after a convolution)")
        convs = [k for k, p in enumerate(candidates) if _is_conv(self.layer(p))]
        if not convs:
            return candidates[-1]
        chosen = candidates[convs[-1]]
        grid = self.layer_shapes[chosen][:2]
        for p in candidates[convs[-1] + 1:]:
            if self.layer_shapes[p][:2] != grid:
                break
            if not hasattr(self.layer(p), "pool_size"):  # a stride-1 pooling branch of a
                chosen = p                                   # NASNet cell is passed over
        return chosen

    def conv_layers(self) -> list[str]:
        """Paths of the layers with convolution kernels and a 4-D output larger than 1x1."""
        return [p for p in self._spatial_layers() if hasattr(self._layers[p], "kernel_size")]

    # -- twins ----------------------------------------------------------------------------------

    def call_twin(self, layer, args, **overrides):
        """Call a private copy of ``layer`` with config ``overrides`` (e.g. activation="linear")
        on ``args``. The copy is built, and given the layer's weights, on its first (eager) call;
        :meth:`refresh_twins` copies the weights again."""
        key = (id(layer), tuple(sorted(overrides.items())))
        if key not in self._twins:
            if not tf.executing_eagerly():
                raise RuntimeError("twins must be built eagerly: call ModelGraph.warm first")
            cfg = layer.get_config()
            cfg.update(overrides)
            cfg["name"] = f"{layer.name}__reportgen_twin"
            twin = type(layer).from_config(cfg)
            twin(*args)
            twin.set_weights(layer.get_weights())
            self._twins[key] = (twin, layer)
        return self._twins[key][0](*args)

    def refresh_twins(self) -> None:
        """Copy the current weights of every original layer into its twin."""
        for twin, src in self._twins.values():
            twin.set_weights(src.get_weights())

    def warm(self, visitor: Visitor | None = None, *, logits: bool = True) -> None:
        """Run one zero image eagerly through ``visitor``, so twins exist before tracing."""
        x = tf.zeros((1,) + self.input_shape, tf.float32)
        self.forward(x, visitor, logits=logits)

    # -- running --------------------------------------------------------------------------------

    def forward(self, x, visitor: Visitor | None = None, *, logits: bool = True):
        """Run the model on ``x`` (training=False) through ``visitor``.

        Args:
            x: input batch (N, H, W, C) float32.
            visitor: called for every layer as ``visitor(layer, path, call, inputs)``.
            logits: return the class logits: a final Softmax, Activation("softmax") or
                Activation("sigmoid") layer is skipped and a final layer with a softmax or
                sigmoid activation is run through a linear twin; for one sigmoid unit z the
                logits of the two classes are [-z, z].

        Returns:
            The selected output (``output_index``) as float32 (a mixed-precision model's
            float16 output is cast), (N, classes) for a classifier (two columns for a binary
            one).
        """
        visitor = visitor or _default_visitor
        final = self._final[-1] if (logits and self._final) else None
        out = _float32(self._output(self._run(self.model, x, visitor, "", final)))
        if logits and self.head in ("binary", "binary_logit"):
            return tf.concat([-out, out], axis=-1)  # class 0 is explained by -z
        return out

    def _output(self, out):
        flat = keras.tree.flatten(out)
        return flat[self.output_index] if len(flat) > 1 else flat[0]

    def probabilities(self, logits):
        """Class probabilities from :meth:`forward`'s class logits, by :attr:`head`: softmax;
        for one sigmoid unit z, [1 - sigmoid(z), sigmoid(z)]; for independent sigmoids, each
        sigmoid."""
        if self.head in ("binary", "binary_logit"):
            p = tf.sigmoid(logits[:, 1:])
            return tf.concat([1.0 - p, p], axis=-1)
        if self.head == "sigmoid":
            return tf.sigmoid(logits)
        if self.head == "probabilities":
            return logits
        return tf.nn.softmax(logits, axis=-1)

    @property
    def opaque(self) -> bool:
        """Whether the model ends in a layer reportgen cannot walk layer by layer (a
        SavedModel: its weights cannot be randomized, its ReLUs are not seen)."""
        return bool(self._final) and savedmodel.is_saved_model(self._final[-1])

    @property
    def opened(self) -> bool:
        """Whether the model's final SavedModel was opened at a convolution (see
        :mod:`reportgen.explain.savedmodel`)."""
        return self.opening() is not None

    def opening(self):
        """The :class:`~reportgen.explain.savedmodel.Split` of the model's final SavedModel,
        or None (no SavedModel, or one that cannot be opened: :attr:`closed` says why)."""
        if not self.opaque:
            return None
        try:
            return savedmodel.split(self._final[-1])
        except savedmodel.SavedModelError:
            return None

    def has_relus(self) -> bool:
        """Whether any layer the graph walk sees applies a ReLU (guided backprop and deconvnet
        change those; without them they would only be the plain gradient)."""
        return any(relu_kind(layer) is not None or getattr(layer, "relus", 0)
                   for layer in self._layers.values())

    def forward_capture(self, x, paths, *, logits: bool = True, tape=None):
        """Run the model and also return the outputs of the layers at ``paths``.

        Args:
            tape: a ``tf.GradientTape``; each captured output is watched by it (for gradients
                with respect to activations).

        Returns:
            (model output as :meth:`forward`, {path: that layer's output as float32}). A layer
            computing in another float type (mixed precision: float16) is captured as its
            float32 copy, and the model goes on from that copy cast back (exactly), so
            gradients with respect to the capture are float32 too.
        """
        wanted = set(paths)
        captured = {}

        def visit(layer, path, call, inputs):
            out = call()
            if path in wanted:
                wide = _float32(out)
                if tape is not None:
                    tape.watch(wide)
                captured[path] = wide
                if wide is not out:
                    out = tf.cast(wide, out.dtype)
            return out

        return self.forward(x, visit, logits=logits), captured

    def _call_layer(self, layer, args, kwargs, visitor, prefix, final):
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.layers.InputLayer):
            return args[0]
        if _is_graph_model(layer) and len(args) == 1 and not kwargs.get("mask"):
            return self._run(layer, args[0], visitor, f"{path}/", final)
        if savedmodel.is_saved_model(layer) and len(args) == 1:
            try:
                cut = savedmodel.split(layer)
            except savedmodel.SavedModelError as e:
                self.closed[path] = str(e)
            else:
                return self._call_split(cut, args[0], visitor, f"{path}/", layer is final)
        if isinstance(layer, keras.layers.Layer):
            kwargs = {**kwargs, "training": False}

        def call():
            if layer is final:
                act = _final_activation(layer)
                if act and isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
                    return args[0]
                if act:
                    return self.call_twin(layer, args, activation="linear")
            if is_depthwise_grouped(layer, args):
                return depthwise_call(layer, args[0])
            return layer(*args, **kwargs)

        return visitor(layer, path, call, args)

    def _call_split(self, cut, x, visitor, prefix: str, logits: bool):
        """A SavedModel opened at a convolution: its two parts, each seen by ``visitor``
        (``prefix`` + the tensor's name with inputs ``(x,)``, then ``prefix`` + ``head``
        with inputs ``(x, tensor)``, returning logits); the output in the SavedModel's own
        structure (logits when ``logits``)."""
        a = visitor(cut.conv, f"{prefix}{cut.conv.name}", lambda: cut.conv(x), (x,))
        out = visitor(cut.head, f"{prefix}{cut.head.name}", lambda: cut.head(x, a), (x, a))
        return keras.tree.pack_sequence_as(cut.structure, [out if logits else cut.activate(out)])

    def _run(self, model, x, visitor, prefix, final):
        if isinstance(model, keras.Sequential):
            h = x
            for layer in model.layers:
                h = self._call_layer(layer, (h,), {}, visitor, prefix, final)
            return h

        def operation_fn(op):
            def run(*args, **kwargs):
                return self._call_layer(op, args, kwargs, visitor, prefix, final)
            return run

        return compat.run_through_graph(model, [x], operation_fn)

