"""Plan the explanation work to a time and memory budget from the model's measured cost.

:func:`probe` times one forward and one backward pass per image on this machine and device, the
trace of one compiled function of each kind (its spec's ``compiles``), an eager call and a small
call's latency, and counts the activation memory of one image; :func:`make_plan` estimates
every part of the report's work from the methods' declared costs
(:data:`~reportgen.explain.methods.REGISTRY`), the functions each traces and the calls it
makes, and, when the estimate is over ``explain.budget``, reduces the extras step by step in
a fixed order (:data:`REDUCTIONS`; each method declares its own in its spec) until it fits, never
touching a key the user set. The unavoidable work (predictions, GradCAM over the whole test
set, the true-class maps of the errors, the galleries) is never cut. The result is a
:class:`Plan`, a frozen value holding every setting as run and each :class:`Reduction` from
what was asked: the build runs it and the report states it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from reportgen.explain.methods import REGISTRY, Shape
from reportgen.explain.methods.spec import OptionCut

#: When ``explain.budget`` is 0, a build plans for :data:`BUDGET_PASSES` predict passes over
#: its test set (as the probe measures one), within [:data:`MIN_BUDGET`, :data:`MAX_BUDGET`]
#: seconds: minutes on a CPU whatever the model, the full report on a small one or a GPU (the
#: 64-px demo's full report takes about two minutes on 2 cores: three leave it its margin).
BUDGET_PASSES = 30
MIN_BUDGET, MAX_BUDGET = 180.0, 900.0
#: Share of the available memory a build plans for when ``explain.memory_gb`` is 0, and at
#: most :data:`MEMORY_CAP` bytes (more memory buys little speed on a CPU).
MEMORY_SHARE = 0.5
MEMORY_CAP = 2 * 2**30
#: The probe times each function for at least this many seconds (at most
#: :data:`PROBE_CALLS` calls) and takes the median: the best of two 0.1 s calls of a
#: MobileNetV2 at 224 px varied from 42 to 77 images per second between builds, and twelve
#: 15 ms calls of the demo's CNN (0.2 s) from 0.5 to 1.7 ms per image on a shared machine.
PROBE_SECONDS = 1.0
PROBE_CALLS = 100
#: The least a model's later traces are counted of its first (:attr:`Probe.trace_warm`).
WARM_FLOOR = 0.2
#: Largest batch the planner chooses (more gains nothing measurable on a CPU).
MAX_BATCH = 128
#: Bytes of working memory per activation byte of a backward pass (activations kept, their
#: gradients, TensorFlow's scratch).
BACKWARD_FACTOR = 3.0
#: The same for a forward pass alone (no tape). Measured on a MobileNetV2 at 224 px, a
#: forward batch took about 0.85 bytes per activation byte; 2 leaves room for TensorFlow's
#: scratch (1.0 took the benchmark's peak from 2.1 to 2.8 GB).
FORWARD_FACTOR = 2.0


@dataclass
class Probe:
    """What one image costs on this machine: seconds of a forward pass and of a backward pass
    (without its forward), per image in batches of ``batch``, on ``device``, timed compiled or
    (the forward pass) eagerly; and the float32 bytes of every layer's output for one image.
    Gradients are always timed compiled: they never run eagerly (see
    :class:`~reportgen.explain.graph.TieredFunction`)."""

    device: str
    forward_s: float
    backward_s: float
    activation_bytes: int
    batch: int
    compiled: bool = True
    #: Seconds per image of the test set's GradCAM (forward, and backward through the head
    #: above the explained layer only); None without a conv layer (then forward + backward).
    cam_s: float | None = None
    #: Seconds to trace the cheapest compiled function of this model: the least over the
    #: probe's compiled functions of the first call's time less a later call's (the gradient
    #: functions always, the forward one when ``compiled``). Every method traces its
    #: functions once per model: seconds on a large model, which a plan for a few images
    #: must count.
    trace_s: float = 0.0
    #: {kind of ``spec.TRACE_KINDS``: its trace over ``trace_s``} as the probe timed one
    #: function of each kind (a backward pass to the input traced in 3 to 4 times a forward
    #: pass's time on ConvNeXtTiny, GradCAM's in 1.3 to 1.6 times). Ratios, so that scaling
    #: ``trace_s`` (the re-plan) scales every kind.
    trace_scale: dict = dataclasses.field(default_factory=dict)
    #: A second trace of the forward function over its first, in [:data:`WARM_FLOOR`, 1]: the
    #: first function traced on a model also pays the model's one-time costs, which the
    #: work's later functions do not (the demo's CNN: 0.43 s the first, 0.1 to 0.2 s each
    #: method's); every kind's trace is scaled by it.
    trace_warm: float = 1.0
    #: Seconds of one eager forward call of one image (the Layers page's feature maps and a
    #: short receptive-field search run eagerly: Python over every layer, 0.5 to 0.8 s a
    #: call on ConvNeXtTiny whatever the batch); 0 when not measured.
    eager_s: float = 0.0
    #: Seconds a call of a compiled function takes beyond its images' share (a gradient call
    #: of one image less ``forward_s + backward_s``): what the work's small batches (a few
    #: sample or quality images, a class of the grid) pay per call; 0 when not measured.
    call_s: float = 0.0

    def trace(self, kind: str) -> float:
        """Seconds to trace one compiled function of ``kind`` (a value of
        ``spec.TRACE_KINDS``): the probe's own of that kind, else of the costliest it timed."""
        scale = self.trace_scale.get(kind, max(self.trace_scale.values(), default=1.0))
        return self.trace_s * scale * self.trace_warm

    @property
    def gradcam_s(self) -> float:
        return self.cam_s if self.cam_s is not None else self.forward_s + self.backward_s

    @property
    def images_per_s(self) -> tuple[float, float]:
        """(forward, forward + backward) images per second."""
        return 1.0 / self.forward_s, 1.0 / (self.forward_s + self.backward_s)


def activation_bytes(graph) -> int:
    """Float32 bytes of the outputs of every layer of ``graph`` for one image (unknown
    dimensions count as 1)."""
    total = 0
    for shape in graph.layer_shapes.values():
        total += int(np.prod([d or 1 for d in shape]))
    return 4 * total


def device_name() -> str:
    """The device Keras runs on: ``GPU`` (with its count) or ``CPU``."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return f"GPU x{len(gpus)}" if gpus else f"CPU ({os.cpu_count()} cores)"


def memory_batch(activation: int, memory: float, factor: float = BACKWARD_FACTOR) -> int:
    """The largest batch (at most :data:`MAX_BATCH`) whose backward pass fits in 80 % of
    ``memory`` bytes, at ``factor`` (:data:`BACKWARD_FACTOR`; :data:`FORWARD_FACTOR` for a
    forward pass alone) times ``activation`` bytes per image."""
    return max(1, min(MAX_BATCH, int(memory * 0.8 // max(factor * activation, 1))))


def probe(ex, images: np.ndarray, batch: int = 16, repeats: int = 2,
          compiled: bool = False, min_seconds: float = PROBE_SECONDS) -> Probe:
    """Time forward and backward passes of ``ex`` on a batch of ``batch`` images (``images``,
    already preprocessed, repeated as needed): one call of each to warm up, then the median
    of at least ``repeats`` calls and as many more as fit in ``min_seconds`` (at most
    :data:`PROBE_CALLS`); per image. ``compiled``: the forward pass as ``tf.function`` (as
    long runs execute; compiling costs seconds on a large model), else eagerly (slower: an
    upper bound, and free). The gradient functions (the backward pass, GradCAM) are compiled
    either way, as the work runs them; the work reuses them. Each compiled function's first
    call less a later one is its trace, one of each kind of ``spec.TRACE_KINDS``
    (:func:`warm_up` first takes TensorFlow's one-time start-up out of them)."""
    import tensorflow as tf

    from reportgen.explain.cam import test_set_cam_function
    from reportgen.explain.common import probability_function
    from reportgen.explain.gradients import gradient_function

    warm_up()
    x = ex.batch(images)
    x = tf.constant(np.ascontiguousarray(np.concatenate([x] * -(-batch // len(x)))[:batch]))
    t = tf.zeros(batch, tf.int32)
    try:  # the test set's GradCAM function itself
        cam = test_set_cam_function(ex)
    except ValueError:  # no conv layer
        cam = None
    fns = {"forward": probability_function(ex.graph), "gradient": gradient_function(ex.graph),
           "cam": cam}
    args = {"forward": (x,), "gradient": (x, t), "cam": (x, t, t)}
    seconds: dict[str, float] = {}
    traced: dict[str, float] = {}
    for kind, fn in fns.items():
        if fn is None:
            continue
        timed = compiled or not fn.eager  # else run eagerly: an upper bound, no trace
        fresh = timed and fn.compiled is None  # traced by this probe
        if timed:
            fn.expect(10**6)  # compile now; the work reuses it
        first, seconds[kind] = _first_and_steady(fn if timed else fn.python, args[kind],
                                                 repeats, min_seconds)
        if fresh:
            fn.trace_s = max(first - seconds[kind], 0.0)
        if timed and fn.trace_s is not None:
            traced[kind] = fn.trace_s
    warm = _retrace(fns["forward"], x, traced.get("forward", 0.0))
    # as the feature maps of one image run (the median of 3: one call is at a moment's load)
    eager = _first_and_steady(fns["forward"].python, (x[:1],), 2, 0.0)[1]
    forward, both = seconds["forward"] / batch, seconds["gradient"] / batch
    one = _first_and_steady(fns["gradient"], (x[:1], t[:1]), 3, 0.0)[1]
    cam_s = seconds["cam"] / batch if "cam" in seconds else None
    least = min(traced.values(), default=0.0)
    return Probe(device_name(), max(forward, 1e-6), max(both - forward, forward),
                 activation_bytes(ex.graph), batch, compiled,
                 cam_s=None if cam_s is None else max(cam_s, 1e-6), trace_s=float(least),
                 trace_scale={k: v / least for k, v in traced.items()} if least > 0 else {},
                 trace_warm=warm, eager_s=eager,
                 call_s=max(one - max(both, 2 * forward), 0.0))


def _first_and_steady(fn: Callable, args: tuple, repeats: int, min_seconds: float
                      ) -> tuple[float, float]:
    """Seconds of the first call ``fn(*args)`` (its outputs made numpy, as the work does) and
    the median of at least ``repeats`` later calls and as many more as fit in
    ``min_seconds`` (at most :data:`PROBE_CALLS`)."""
    def call() -> None:
        out = fn(*args)
        for v in out if isinstance(out, (tuple, list)) else (out,):
            np.asarray(v)

    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    times: list[float] = []
    while len(times) < repeats or (sum(times) < min_seconds and len(times) < PROBE_CALLS):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return first, float(np.median(times))


def _retrace(fn, x, first_trace: float) -> float:
    """A second trace of the forward function ``fn`` (a fresh ``tf.function`` of the same
    Python) over its first, ``first_trace`` seconds, in [:data:`WARM_FLOOR`, 1]; 1 when the
    first was not timed."""
    import tensorflow as tf

    if first_trace <= 0:
        return 1.0
    again = tf.function(fn.python, input_signature=fn.signature, autograph=False)
    first, steady = _first_and_steady(again, (x,), 1, 0.0)
    return min(max((first - steady) / first_trace, WARM_FLOOR), 1.0)


_WARMED: list[bool] = []


def warm_up() -> None:
    """Trace and run a tiny compiled function that takes a gradient of a convolution, once per
    process: TensorFlow's one-time start-up of its first ``tf.function`` and first gradient
    (most of a small model's first traces) is then paid here, not in the probe's traces,
    which stand for the traces of the work's later functions."""
    if _WARMED:
        return
    import tensorflow as tf

    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.conv2d(x, tf.ones((3, 3, 1, 2)), 1, "SAME")
            y = tf.reduce_sum(tf.nn.softmax(tf.reduce_mean(tf.nn.relu(y), axis=(1, 2))))
        return tape.gradient(y, x)

    tf.function(grad, autograph=False)(tf.zeros((1, 8, 8, 1)))
    _WARMED.append(True)


def time_budget(budget: float, p: Probe, n_test: int) -> float:
    """Seconds to plan for: ``budget`` when set, else :data:`BUDGET_PASSES` predict passes of
    ``n_test`` images at the probe's forward speed, clipped to [MIN_BUDGET, MAX_BUDGET]."""
    if budget:
        return float(budget)
    return float(min(max(BUDGET_PASSES * n_test * p.forward_s, MIN_BUDGET), MAX_BUDGET))


def memory_budget(memory_gb: float) -> float:
    """Bytes to plan batches for: ``memory_gb`` GiB, or (0) :data:`MEMORY_SHARE` of the
    available memory, at most :data:`MEMORY_CAP`."""
    if memory_gb:
        return memory_gb * 2**30
    return min(MEMORY_SHARE * available_memory(), MEMORY_CAP)


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` of /proc/meminfo, else the physical
    memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class Work:
    """What the planner sizes: the counts of the build, with the settings as planned. Never
    changed: a reduction makes a new one (:meth:`with_settings`, :meth:`with_option`)."""

    n_test: int
    n_samples: int
    n_grid: int
    grid_classes: int
    shape: Shape
    #: explain.<key>: value (quality_images, quality_steps, ...; in a build every key of
    #: [explain] but the method tables), read-only.
    settings: dict
    #: {method: its options dataclass}, read-only.
    options: dict
    quality_methods: tuple[str, ...] = ()
    #: Whether the Layers page runs test images again (``settings["receptive_images"]`` of
    #: them) to find its receptive-field units; not when the GradCAM pass over the test set
    #: finds them (the explained layer is the one shown).
    rf_search: bool = False
    #: Test images whose activations the concepts factorise (each class's first
    #: ``concepts.IMAGES``): one forward and backward pass each; the strategies cost
    #: :data:`STRATEGY_S` per test map.
    n_concepts: int = 0
    #: Points of the explorer's map (test and training images; see
    #: ``reportgen.report.explorer.map_sizes``): its layout is a part of the work.
    map_points: int = 0
    #: Estimated seconds of the data audit (``reportgen.audit.issues.estimate_seconds``; 0
    #: when ``report.data_audit`` is off): numpy over every image, a part of the work that no
    #: setting of the plan reduces.
    audit_s: float = 0.0

    def __post_init__(self):  # copies: the caller's dicts and lists may change later
        object.__setattr__(self, "settings", dict(self.settings))
        object.__setattr__(self, "options", dict(self.options))
        object.__setattr__(self, "quality_methods", tuple(self.quality_methods))

    def with_settings(self, **values) -> Work:
        """This work with the settings ``values`` changed."""
        return dataclasses.replace(self, settings={**self.settings, **values})

    def with_option(self, method: str, key: str, value) -> Work:
        """This work with option ``key`` of ``method`` changed to ``value``."""
        changed = dataclasses.replace(self.options[method], **{key: value})
        return dataclasses.replace(self, options={**self.options, method: changed})


def _method_s(p: Probe, name: str, options, shape: Shape) -> float:
    c = REGISTRY[name].cost(options, shape)
    return c.forward * p.forward_s + c.backward * p.backward_s


def _calls(passes: float, batch: int) -> int:
    """Calls of a function that makes ``passes`` passes in batches of ``batch``."""
    return -(-int(np.ceil(passes)) // max(batch, 1))


def _run_s(p: Probe, w: Work, names, n: int) -> float:
    """Seconds of the methods ``names`` on ``n`` images: their declared passes at the probe's
    seconds per image, and the probe's ``call_s`` for each call, a batch of the passes of
    the kind each method makes more of (a gradient call is its forward and backward)."""
    total = 0.0
    for m in names:
        c = REGISTRY[m].cost(w.options[m], w.shape)
        total += n * (c.forward * p.forward_s + c.backward * p.backward_s)
        total += _partial_s(p, n * max(c.forward, c.backward))
    return total


def _partial_s(p: Probe, passes: float) -> float:
    """The call latency ``passes`` in batches of the probe's pay beyond their share of the
    probe's seconds per image (timed on full batches, which carry one call's latency each):
    ``call_s`` times each call's missing share of a batch."""
    return (_calls(passes, p.batch) - passes / max(p.batch, 1)) * p.call_s


#: The compiled functions the probe traces before the work (no method pays for them again).
PROBED = frozenset({"probabilities", "input gradient"})
def traces(methods, traced: frozenset = frozenset()) -> int:
    """How many compiled functions ``methods`` run between them, but those ``traced``
    already (each method's spec names its functions: several share one)."""
    return len(_functions(methods, traced))


def trace_seconds(p: Probe, methods, traced: frozenset = frozenset()) -> float:
    """Seconds to trace the compiled functions ``methods`` run between them, but those
    ``traced`` already: each at the probe's trace of its kind (its spec's ``compiles``)."""
    functions = _functions(methods, traced)
    return sum(p.trace(kind) for kind in functions.values())


def _functions(methods, traced: frozenset) -> dict[str, str]:
    """{name: trace kind} of the compiled functions ``methods`` run, but those ``traced``."""
    return {f: kind for m in methods for f, kind in REGISTRY[m].functions.items()
            if f not in traced}


#: Seconds per test map of the strategies (numpy: resampling, the affinity, the eigenvectors
#: of at most 500 maps a class, k-means); measured on an idle 2-core machine: 450 maps of 3
#: classes in 0.04 s, 2,000 of one class in 0.10 s, 5,000 of 10 classes in 0.6 s.
STRATEGY_S = 1.2e-4


def estimate(p: Probe, w: Work) -> dict[str, float]:
    """Estimated seconds of each part of the work: "test set" (GradCAM of every test image,
    and of the true class from the same forward pass, at the probe's speed of that function:
    never reduced), the sample images, the class grid, the quality table's maps, curves and
    sanity check, and the Layers page (:func:`_layers_s`). Each part also counts the tracing
    of the compiled functions it is first to run, each at the probe's trace of its kind
    (:func:`trace_seconds`): the methods' on the sample images (but those the probe
    compiled), all of them again on the sanity check's randomized model, the curves' forward
    pass. Then the strategies (numpy, :data:`STRATEGY_S` a map) and the concepts (a forward
    and backward pass of each factorised image, one trace of a CAM-like function); neither is
    reduced."""
    s = w.settings
    q = min(s["quality_images"], w.n_test)
    sanity = min(s["sanity_images"], q)
    conv = w.shape.layer_channels is not None
    quality = bool(q and w.quality_methods)
    return {  # named as the parts of Explained.seconds
        "test set": _cam_s(p, w.n_test, 1) if conv else 0.0,  # with the errors' true maps
        "methods on sample images": _run_s(p, w, w.options, w.n_samples)
        + bool(w.n_samples) * trace_seconds(p, w.options, PROBED),
        "class grid": _cam_s(p, w.n_grid, w.grid_classes) if conv else 0.0,
        "quality: maps": _run_s(p, w, w.quality_methods, q)
        + bool(q and not w.n_samples) * trace_seconds(p, w.quality_methods, PROBED),
        "quality: deletion/insertion": _curves_s(p, w, q) if quality else 0.0,
        "quality: sanity check": _run_s(p, w, w.quality_methods, sanity)
        + bool(sanity and quality) * (trace_seconds(p, w.quality_methods) + _copy_s(p)),
        "layers": _layers_s(p, w) if conv else 0.0,
        "strategies": w.n_test * STRATEGY_S if conv else 0.0,
        "concepts": (w.n_concepts * (p.forward_s + p.backward_s)
                     + bool(w.n_concepts) * p.trace("cam")) if conv else 0.0,
        "explorer map": map_seconds(w.map_points),
        "data audit": w.audit_s,
    }


#: Parts of the estimate stated in the plan but not fitted to ``explain.budget``: the
#: explorer's map costs the same for any model (its size is capped at its own number of
#: points), so no explanation is reduced to make room for it.
UNBUDGETED = ("explorer map", "data audit")


def budgeted(est: dict[str, float]) -> float:
    """The seconds of the estimate ``est`` that ``explain.budget`` covers (all parts but
    :data:`UNBUDGETED`)."""
    return sum(v for k, v in est.items() if k not in UNBUDGETED)


#: Seconds of the explorer's map (PCA, then scikit-learn's Barnes-Hut t-SNE on one thread):
#: a fixed part and a part per point x log2(points); see :func:`map_seconds`.
MAP_S_FIXED = 0.6
MAP_S_PER_POINT_LOG = 0.00018


def map_seconds(points: int) -> float:
    """Estimated seconds of the explorer's map of ``points`` points (Barnes-Hut t-SNE costs
    about n log n): :data:`MAP_S_FIXED` (setting up) + :data:`MAP_S_PER_POINT_LOG`
    n log2 n: about 12 s for 5,000 points, fitted to scikit-learn 1.9 on an idle 2-core
    machine (clustered 64-d points: 13.0 s for 5,000 in a fresh process, 4.8 s for 2,000,
    2.3 s for 900; the demo's 900 points in a build 1.8 s); 0 for
    none. Not reduced by the plan: the map is capped at its own number of points. It does not
    depend on the model: the features come from the prediction pass."""
    if points <= 0:
        return 0.0
    return MAP_S_FIXED + MAP_S_PER_POINT_LOG * points * math.log2(points + 1)




def _curves_s(p: Probe, w: Work, q: int) -> float:
    """Estimated seconds of the deletion and insertion curves of ``q`` images for each quality
    method (each tie order of a map): per image 2 curves of ``quality_steps - 1`` forward
    passes, in calls of ``batch // (quality_steps - 1)`` images a curve, of one function
    for all: run eagerly (:attr:`Probe.eager_s` a call) until a method's calls would pass
    the eager allowance (:func:`~reportgen.explain.graph.eager_work`), then traced once
    ("forward") and compiled (``call_s`` a call); and a compiled call for each method's
    baseline (each call's latency beyond its share of a batch: :func:`_partial_s`)."""
    from reportgen.explain.graph import COMPILE_AFTER, eager_work

    inner = max(w.settings["quality_steps"] - 1, 0)
    group = max(1, p.batch // max(inner, 1))
    orders = [w.settings["tie_orders"] if REGISTRY[m].output == "map" else 1
              for m in w.quality_methods]
    calls = 2 * -(-q // group)  # a method's, in one order
    work = eager_work(calls, 2 * q * inner)  # both curves' copies
    seen, eager, compiled, traced = 0, 0, 0, False
    for _ in range(sum(orders) if inner else 0):
        if not traced and seen + work <= COMPILE_AFTER:
            seen, eager = seen + work, eager + calls
        else:
            traced, compiled = True, compiled + calls
    passes = q * 2 * inner * sum(orders)
    full = min(group * inner / max(p.batch, 1), 1.0)  # a call's share of a batch
    return (passes * p.forward_s + eager * p.eager_s + traced * p.trace("forward")
            + (compiled * (1 - full) + len(w.quality_methods)) * p.call_s)


def _cam_s(p: Probe, n: int, classes: int) -> float:
    """Seconds of GradCAM of ``n`` images for each of ``classes`` classes (a call each)."""
    return classes * (n * p.gradcam_s + _partial_s(p, n))


def _copy_s(p: Probe) -> float:
    """Estimated seconds to make the sanity check's randomized copy of the model and its
    explainer: a walk over every layer to rebuild it (about a forward pass's trace: 2.6 s
    against 4.1 s on ConvNeXtTiny) and an eager forward pass for its layers' shapes."""
    return p.trace("forward") + p.eager_s


def _layers_s(p: Probe, w: Work) -> float:
    """Estimated seconds of the Layers page of a model with a conv layer: the filter patterns
    of three layers and deep dream at 12 steps an octave, each one compiled gradient function
    (a trace of the "gradient" kind); the receptive-field search's forward passes over
    ``receptive_images`` test images, compiled (a "forward" trace) only when its work is more
    than a function runs eagerly, else each batch an eager call; the feature maps
    of one image, an eager call for each of three layers; the receptive-field analysis of
    the conv layers, a walk over the model's layers like two eager calls (1.0 s against
    0.5 s an eager call on ConvNeXtTiny)."""
    from reportgen.explain.graph import COMPILE_AFTER, eager_work

    s = w.settings
    grad = p.forward_s + p.backward_s
    patterns = 3 * s["pattern_filters"] * s["pattern_steps"] * grad
    dreams = s["dream_images"] * s["dream_octaves"] * 12 * grad
    rf_images = min(s.get("receptive_images", 0), w.n_test) if w.rf_search else 0
    rf_calls = -(-rf_images // max(p.batch, 1))
    traced = eager_work(rf_calls, rf_images) > COMPILE_AFTER
    rf_s = p.trace("forward") if traced else rf_calls * p.eager_s
    analysis = 2 * p.eager_s if s.get("receptive_units", 0) else 0.0
    return (patterns + dreams + rf_images * p.forward_s + rf_s + 3 * p.eager_s + analysis
            + (bool(s["pattern_filters"]) + bool(s["dream_images"])) * p.trace("gradient"))


#: Why a reduction was made when it was to fit the budget at the start of the build.
TO_FIT = "to fit explain.budget"
#: Why explain.sanity_images follows explain.quality_images down.
AT_MOST_QUALITY = "at most explain.quality_images"
#: Why explain.sanity_images is 0 for a model whose head cannot be randomized.
OPAQUE_HEAD = "the model's head is inside a SavedModel, whose weights cannot be randomized"
#: Why a method is left out of the report (the last resort).
OVER_ON_SAMPLES = ("over the budget on the sample images alone; name it in explain.methods to "
                   "keep it")
#: Reduction keys that leave methods out: what their text says after the methods' labels.
LEFT_OUT = {"explain.methods": "left out",
            "quality_methods": "left out of the quality table (shown on the samples)"}


@dataclass(frozen=True)
class Reduction:
    """One change the plan made to what was asked: ``key`` (``explain.tie_orders``,
    ``explain.<method>.<option>``; ``explain.methods`` for methods left out of the report,
    ``quality_methods`` for methods left out of the quality table) from ``asked`` to ``used``
    (for those two, tuples of method names), and ``why``."""

    key: str
    asked: Any
    used: Any
    why: str = TO_FIT

    def __str__(self) -> str:
        if self.key in LEFT_OUT:
            gone = [REGISTRY[m].label for m in self.asked if m not in self.used]
            text = f"{', '.join(gone)} {LEFT_OUT[self.key]}"
        else:
            text = f"{self.key} {self.asked} → {self.used}"
        return text if self.why == TO_FIT else f"{text} ({self.why})"

    def as_dict(self) -> dict:
        """Plain data for metrics.json: key, asked, used, why and the sentence."""
        plain = [list(v) if isinstance(v, tuple) else v for v in (self.asked, self.used)]
        return {"key": self.key, "asked": plain[0], "used": plain[1], "why": self.why,
                "text": str(self)}


def _method_cost(w: Work, m: str) -> float:
    """Method ``m``'s cost per image in forward passes (the costliest is left out first)."""
    return REGISTRY[m].cost(w.options[m], w.shape).forward_equivalents


def _without_sanity(w: Work, why: str | None) -> tuple[Work, tuple[Reduction, ...]]:
    """``w`` with explain.sanity_images 0 and the reduction that says ``why``, where the
    check cannot run (``why`` not None) and was asked for; else ``w`` as it is."""
    asked = w.settings["sanity_images"]
    if why is None or not asked:
        return w, ()
    return w.with_settings(sanity_images=0), (Reduction("explain.sanity_images", asked, 0,
                                                        why),)


def _clamped_sanity(w: Work) -> tuple[Work, tuple[Reduction, ...]]:
    """``w`` with explain.sanity_images at most explain.quality_images, and the reduction
    that says so where it changed."""
    s = w.settings
    if s["sanity_images"] <= s["quality_images"]:
        return w, ()
    return (w.with_settings(sanity_images=s["quality_images"]),
            (Reduction("explain.sanity_images", s["sanity_images"], s["quality_images"],
                       AT_MOST_QUALITY),))


Step = Callable[[Work, set], "tuple[Work, tuple[Reduction, ...]] | None"]


def _setting(key: str, floor: int, smaller: Callable[[int], int]) -> Step:
    """The step that cuts setting ``key`` to ``smaller(value)``, never below ``floor``."""
    def step(w: Work, given: set):
        old = w.settings[key]
        if f"explain.{key}" in given or old <= floor:
            return None
        if key == "receptive_images" and (not w.rf_search or w.n_test <= floor):
            return None  # no search, or one over so few images that fewer save nothing
        return w.with_settings(**{key: smaller(old)}), (
            Reduction(f"explain.{key}", old, smaller(old)),)
    return step


def _quality_images(floor: int) -> Step:
    """The step that cuts the quality table to ``floor`` images (and the sanity check with
    it, said in a reduction of its own)."""
    def step(w: Work, given: set):
        old = w.settings["quality_images"]
        if "explain.quality_images" in given or min(old, w.n_test) <= floor:
            return None
        cut, clamp = _clamped_sanity(w.with_settings(quality_images=floor))
        return cut, (Reduction("explain.quality_images", old, floor),) + clamp
    return step


def _samples_per_class(w: Work, given: set):
    """One sample image of each shown class."""
    old = w.settings.get("samples_per_class", 0)
    if "explain.samples_per_class" in given or old <= 1 or w.n_samples <= w.n_grid:
        return None
    cut = dataclasses.replace(w.with_settings(samples_per_class=1), n_samples=w.n_grid)
    return cut, (Reduction("explain.samples_per_class", old, 1),)


def _option_cut(method: str, cut: OptionCut) -> Step:
    """The step that cuts option ``cut.option`` of ``method`` (declared in its spec)."""
    def step(w: Work, given: set):
        key = f"explain.{method}.{cut.option}"
        if method not in w.options or key in given:
            return None
        old = getattr(w.options[method], cut.option)
        if old <= cut.floor:
            return None
        return w.with_option(method, cut.option, cut.smaller(old)), (
            Reduction(key, old, cut.smaller(old)),)
    return step


def _leave_out(of_quality: bool) -> Step:
    """The step that leaves the costliest optional method (its spec's
    ``reductions.optional``) out of the quality table, or (``of_quality`` False, the last
    resort) out of the report; never when the user named the methods."""
    def step(w: Work, given: set):
        pool = w.quality_methods if of_quality else tuple(w.options)
        optional = [m for m in pool if REGISTRY[m].reductions.optional]
        if not optional or "explain.methods" in given:
            return None
        m = max(optional, key=lambda name: _method_cost(w, name))
        quality = tuple(q for q in w.quality_methods if q != m)
        if of_quality:
            return dataclasses.replace(w, quality_methods=quality), (
                Reduction("quality_methods", w.quality_methods, quality),)
        options = {k: v for k, v in w.options.items() if k != m}
        return dataclasses.replace(w, options=options, quality_methods=quality), (
            Reduction("explain.methods", tuple(w.options), tuple(options), OVER_ON_SAMPLES),)
    return step


#: The planner's own reductions (named in :data:`REDUCTIONS`): settings of the quality table
#: and the Layers page with their floors and how each is cut.
_STEPS: dict[str, Step] = {
    "tie_orders": _setting("tie_orders", 1, lambda v: 1),
    "quality_steps": _setting("quality_steps", 4, lambda v: max(4, v // 2)),
    "pattern_steps": _setting("pattern_steps", 10, lambda v: max(10, v // 4)),
    "dream_octaves": _setting("dream_octaves", 1, lambda v: 1),
    "dream_images": _setting("dream_images", 0, lambda v: 0),
    "receptive_images": _setting("receptive_images", 64, lambda v: max(64, v // 8)),
    "pattern_filters": _setting("pattern_filters", 0, lambda v: 0),
    "samples_per_class": _samples_per_class,
    **{f"quality_images:{n}": _quality_images(n) for n in (50, 20, 10, 5)},
}

#: The reductions, in the order they are tried. "method options" stands for every
#: :class:`~reportgen.explain.methods.spec.OptionCut` the methods declare (in registry order);
#: "drop optional" and "omit optional" for leaving the methods their specs mark optional out
#: of the quality table and, last, of the report, the costliest first.
REDUCTIONS = ("tie_orders", "quality_images:50", "method options", "quality_steps",
              "quality_images:20", "pattern_steps", "dream_octaves", "receptive_images",
              "drop optional", "quality_images:10", "dream_images", "pattern_filters",
              "samples_per_class", "omit optional", "quality_images:5")
#: The reductions a re-plan may still take once the sample images are explained: the quality
#: table's and the Layers page's sizes only (the methods' options stay as the sample images
#: used them, so every map of a method is made alike).
LATE_REDUCTIONS = ("tie_orders", "quality_images:50", "quality_steps", "quality_images:20",
                   "pattern_steps", "dream_octaves", "receptive_images", "drop optional",
                   "quality_images:10", "dream_images", "pattern_filters", "quality_images:5")


def steps(order: tuple[str, ...]) -> list[Step]:
    """The steps of ``order`` (:data:`REDUCTIONS` or :data:`LATE_REDUCTIONS`), the methods'
    own expanded from the registry."""
    optional = sum(spec.reductions.optional for spec in REGISTRY.values())
    out: list[Step] = []
    for name in order:
        if name == "method options":
            out += [_option_cut(m, cut) for m, spec in REGISTRY.items()
                    for cut in spec.reductions.options]
        elif name in ("drop optional", "omit optional"):
            out += [_leave_out(name == "drop optional")] * optional
        else:
            out.append(_STEPS[name])
    return out


#: The keys the reductions change (a key set by the user is kept as it is).
REDUCIBLE = {"explain.methods", "explain.quality_images", "explain.sanity_images",
             "explain.samples_per_class", *(f"explain.{k}" for k in _STEPS if ":" not in k),
             *(f"explain.{m}.{cut.option}" for m, spec in REGISTRY.items()
               for cut in spec.reductions.options)}


def _reduce_until(order: tuple[str, ...], w: Work, given: set[str],
                  cost: Callable[[Work], float], limit: float
                  ) -> tuple[Work, tuple[Reduction, ...]]:
    """Take the steps of ``order`` while ``cost(work)`` is over ``limit``; return the work
    reduced and what each step that changed something did."""
    made: tuple[Reduction, ...] = ()
    for step in steps(order):
        if cost(w) <= limit:
            break
        out = step(w, given)
        if out:
            w, what = out
            made += what
    return w, made


@dataclass(frozen=True)
class Replan:
    """The re-plan once the early parts ran: they took ``ratio`` times their estimate
    (``early_s`` seconds), leaving ``left_s`` of the budget; ``reduced`` reductions made."""

    ratio: float
    early_s: float
    left_s: float
    reduced: int = 0


@dataclass(frozen=True)
class Plan:
    """The plan the explanations ran to: the probe's measurements, the work as planned (every
    setting and method option as run), the batch sizes, the estimates as asked and as
    planned, and each :class:`Reduction` from what was asked. Never changed: the re-plan makes
    a new one (:func:`replan`). The report reads it, so a page can only state what ran."""

    probe: Probe
    work: Work
    budget_s: float
    memory_bytes: int
    batch_size: int
    forward_batch_size: int
    estimate_full_s: dict
    estimate_s: dict
    reductions: tuple[Reduction, ...] = ()
    notes: tuple[str, ...] = ()
    budget_default: bool = False
    replan: Replan | None = None
    budget_passes: int = BUDGET_PASSES
    budget_range: tuple[float, float] = (MIN_BUDGET, MAX_BUDGET)

    @property
    def settings(self) -> dict:
        """explain.<key>: the value run."""
        return dict(self.work.settings)

    @property
    def options(self) -> dict:
        """{method: its options dataclass as run}, the methods that were planned to run."""
        return dict(self.work.options)

    @property
    def quality_methods(self) -> list[str]:
        return list(self.work.quality_methods)

    @property
    def reduced(self) -> list[str]:
        """Each reduction as a sentence (``explain.tie_orders 3 → 1``)."""
        return [str(r) for r in self.reductions]

    @property
    def fits_as_asked(self) -> bool:
        """Whether nothing had to be cut (a sanity check held to the quality images, or off
        where it cannot run, is no cut) and nothing is noted."""
        return not self.notes and all(r.why in (AT_MOST_QUALITY, OPAQUE_HEAD)
                                      for r in self.reductions)

    @property
    def batch_sizes(self) -> dict[str, int]:
        """{method: its batch}: the forward batch for methods without a backward pass."""
        return {m: self.forward_batch_size if REGISTRY[m].cost(o, self.work.shape).backward == 0
                else self.batch_size for m, o in self.work.options.items()}

    @property
    def method_s(self) -> dict[str, float]:
        """{method: estimated seconds per image}."""
        return {m: round(_method_s(self.probe, m, o, self.work.shape), 5)
                for m, o in self.work.options.items()}

    def __getattr__(self, name: str):  # the probe's measurements, as the pages name them
        if name in _MEASURED:
            return _MEASURED[name](self.probe)
        raise AttributeError(name)

    def as_dict(self) -> dict:
        """Plain data for metrics.json (``explain.plan``)."""
        out = {k: getattr(self, k) for k in (*_MEASURED, "budget_s", "memory_bytes",
                                             "batch_size", "forward_batch_size", "batch_sizes",
                                             "estimate_full_s", "estimate_s", "reduced",
                                             "settings", "quality_methods", "method_s",
                                             "budget_default", "budget_passes")}
        return {**out, "notes": list(self.notes), "budget_range": list(self.budget_range),
                "reductions": [r.as_dict() for r in self.reductions],
                "options": {m: dataclasses.asdict(o) for m, o in self.work.options.items()},
                "replan": None if self.replan is None else dataclasses.asdict(self.replan)}


#: What the pages read of the probe through the plan (``plan.device``).
_MEASURED: dict[str, Callable[[Probe], Any]] = {
    "device": lambda p: p.device,
    "timed": lambda p: "compiled" if p.compiled else ("forward eagerly (an upper bound), "
                                                      "gradients compiled"),
    "forward_images_per_s": lambda p: round(p.images_per_s[0], 2),
    "backward_images_per_s": lambda p: round(p.images_per_s[1], 2),
    "gradcam_images_per_s": lambda p: round(1.0 / p.gradcam_s, 2),
    "trace_s": lambda p: round(p.trace_s, 3),
    "trace_kinds_s": lambda p: {k: round(p.trace(k), 3) for k in p.trace_scale},
    "eager_forward_s": lambda p: round(p.eager_s, 3),
    "call_s": lambda p: round(p.call_s, 4),
    "trace_warm": lambda p: round(p.trace_warm, 3),
    "activation_bytes_per_image": lambda p: p.activation_bytes,
}


def _rounded(est: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 1) for k, v in est.items()}


def make_plan(p: Probe, w: Work, budget: float, memory: float, given: set[str],
              batch_size: int, no_sanity: str | None = None) -> Plan:
    """The plan of the work ``w`` on probe ``p``: reductions in :data:`REDUCTIONS` order until
    the estimate fits the time budget (:func:`time_budget` of ``budget``, explain.budget: 0
    for the default one), and the batch sizes (``batch_size`` when the user set
    ``explain.batch_size``, else what ``memory`` bytes hold: of a backward pass, and of a
    forward pass alone for the methods without one and the deletion/insertion curves).
    ``no_sanity``: why the sanity check cannot run on this model (:data:`OPAQUE_HEAD`), or
    None: then explain.sanity_images is 0 from the start, said so, and no time is planned
    for it."""
    budget_s = time_budget(budget, p, w.n_test)
    fits = memory_batch(p.activation_bytes, memory)
    user = "explain.batch_size" in given
    batch = batch_size if user else fits
    forward = batch if user else memory_batch(p.activation_bytes, memory, FORWARD_FACTOR)
    w, off = _without_sanity(w, no_sanity)
    full = estimate(p, w)
    w, clamp = _clamped_sanity(w)
    clamp = off + clamp
    w, reduced = _reduce_until(REDUCTIONS, w, given, lambda v: budgeted(estimate(p, v)),
                               budget_s)
    w = w.with_settings(batch_size=int(batch), methods=list(w.options), budget=budget_s,
                        memory_gb=round(memory / 2**30, 3))  # automatic values resolved
    planned = estimate(p, w)
    kept = given - {r.key for r in clamp + reduced}  # a sanity_images set follows quality
    return Plan(p, w, budget_s, int(memory), int(batch), int(forward), _rounded(full),
                _rounded(planned), clamp + reduced,
                _notes(budgeted(planned), budget_s, kept, batch, fits, memory, p),
                budget_default=not budget)


def _notes(total: float, budget_s: float, kept_given: set[str], batch: int, fits: int,
           memory: float, p: Probe) -> tuple[str, ...]:
    """What the plan could not do: fit the budget (``kept_given``: the keys the user set that
    the plan kept as set), or the user's batch in the memory."""
    notes = []
    if total > budget_s:
        kept = sorted(k for k in kept_given if k in REDUCIBLE)
        notes.append(f"Over the budget: about {total:.0f} s of work against "
                     f"explain.budget = {budget_s:g} s"
                     + (f"; set by you and kept: {', '.join(kept)}" if kept else
                        "; the unavoidable work and the smallest extras take that long"))
    if batch > fits:
        notes.append(f"explain.batch_size = {batch} (set by you) needs about "
                     f"{batch * BACKWARD_FACTOR * p.activation_bytes / 2**30:.1f} GiB, more "
                     f"than the memory budget of {memory / 2**30:.1f} GiB")
    return tuple(notes)


#: The parts of the estimate still to run when the re-plan is made.
LATE_PARTS = ("quality: maps", "quality: deletion/insertion", "quality: sanity check", "layers")
#: The parts the re-plan measures the plan by.
EARLY_PARTS = ("test set", "methods on sample images", "class grid")


def replan(plan: Plan, measured: dict[str, float], given: set[str]) -> Plan:
    """The plan of the rest of the work after the early parts ran: when they took longer than
    planned (``measured`` seconds of :data:`EARLY_PARTS` against the plan's estimate), every
    later part is assumed slower by that ratio too, and :data:`LATE_REDUCTIONS` are taken in
    order until the rest fits what is left of the budget. Returns a new plan: its work, the
    estimate of the later parts (at the measured speed), its reductions with the new ones
    (each saying it was re-planned) and :class:`Replan`; ``plan`` itself with only
    :attr:`Plan.replan` set when the early parts were on time."""
    p, w = plan.probe, plan.work
    first = estimate(p, w)
    spent = sum(measured.get(k, 0.0) for k in EARLY_PARTS)
    ratio = spent / max(sum(first[k] for k in EARLY_PARTS), 1e-9)
    info = Replan(round(ratio, 3), round(spent, 1), round(plan.budget_s - spent, 1))
    if ratio <= 1.0:
        return dataclasses.replace(plan, replan=info)
    slow = dataclasses.replace(p, forward_s=p.forward_s * ratio, backward_s=p.backward_s * ratio,
                               cam_s=None if p.cam_s is None else p.cam_s * ratio,
                               trace_s=p.trace_s * ratio)
    w, made = _reduce_until(LATE_REDUCTIONS, w, given,
                            lambda v: sum(estimate(slow, v)[k] for k in LATE_PARTS),
                            plan.budget_s - spent)
    why = f"re-planned: the work so far took {ratio:.2f}x its estimate"
    made = tuple(dataclasses.replace(r, why=why if r.why == TO_FIT else f"{r.why}; {why}")
                 for r in made)
    est = estimate(slow, w)
    return dataclasses.replace(
        plan, work=w, reductions=plan.reductions + made,
        estimate_s={**plan.estimate_s, **_rounded({k: est[k] for k in LATE_PARTS})},
        replan=dataclasses.replace(info, reduced=len(made)))


def progress_steps(plan: Plan | None, scored: list[str]) -> list[float]:
    """The planned seconds of each step of the "Methods and quality" progress bar: the sample
    images and class grid, then one step per method of ``scored`` (its maps, curves and
    sanity check, each part of the estimate shared by the methods' costs per image), so the
    bar's ETA follows the plan."""
    if plan is None:
        return [1.0] * (len(scored) + 1)
    est, cost = plan.estimate_s, plan.method_s
    first = est.get("methods on sample images", 0.0) + est.get("class grid", 0.0)
    quality = sum(est.get(k, 0.0) for k in ("quality: maps", "quality: deletion/insertion",
                                            "quality: sanity check"))
    total = sum(cost.get(m, 0.0) for m in scored)
    return [first] + [quality * (cost.get(m, 0.0) / total if total else 1 / len(scored))
                      for m in scored]
