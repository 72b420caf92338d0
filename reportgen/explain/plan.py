"""Plan the explanation work to a time and memory budget from the model's measured cost.

:func:`probe` times one forward and one backward pass per image on this machine and device and
counts the activation memory of one image; :func:`make_plan` estimates every part of the
report's work from the methods' declared costs (:data:`~reportgen.explain.methods.REGISTRY`)
and, when the estimate is over ``explain.budget``, reduces the extras step by step in a fixed
order (:data:`REDUCTIONS`) until it fits, never touching a key the user set. The unavoidable
work (predictions, GradCAM over the whole test set, the true-class maps of the errors, the
galleries) is never cut. The plan is plain data: the report states it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field

import numpy as np

from reportgen.explain.methods import REGISTRY, Shape

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
#: MobileNetV2 at 224 px varied from 42 to 77 images per second between builds.
PROBE_SECONDS = 1.0
PROBE_CALLS = 12
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
    #: Seconds to trace one compiled function of this model (the mean over the probe's
    #: compiled functions of the first call's time less a later call's: the gradient
    #: functions always, the forward one when ``compiled``). Every method traces its function
    #: once per model: seconds on a large model, which a plan for a few images must count.
    trace_s: float = 0.0

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
    either way, as the work runs them; the work reuses them."""
    import tensorflow as tf

    from reportgen.explain.cam import test_set_cam_function
    from reportgen.explain.common import probability_function
    from reportgen.explain.gradients import gradient_function

    x = ex.batch(images)
    x = tf.constant(np.ascontiguousarray(np.concatenate([x] * -(-batch // len(x)))[:batch]))
    t = tf.zeros(batch, tf.int32)
    fwd, grad = probability_function(ex.graph), gradient_function(ex.graph)
    try:  # the test set's GradCAM function itself
        cam = test_set_cam_function(ex)
    except ValueError:  # no conv layer
        cam = None
    fns = [f for f in (fwd, grad, cam) if f is not None]
    timed = [f for f in fns if compiled or not f.eager]
    fresh = [f for f in timed if f.compiled is None]  # traced by this probe
    for fn in timed:
        fn.expect(10**6)  # compile now; the work reuses it
    run = [f if f in timed else f.python for f in fns]  # eager: uncounted

    traces = []

    def best(k: int, call) -> float:
        t0 = time.perf_counter()
        call()
        first = time.perf_counter() - t0
        times: list[float] = []
        while len(times) < repeats or (sum(times) < min_seconds and len(times) < PROBE_CALLS):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        steady = float(np.median(times))
        if fns[k] in fresh:
            fns[k].trace_s = max(first - steady, 0.0)
        if fns[k] in timed and fns[k].trace_s is not None:
            traces.append(fns[k].trace_s)
        return steady / batch

    forward = best(0, lambda: np.asarray(run[0](x)))
    both = best(1, lambda: np.asarray(run[1](x, t)))
    cam_s = (best(2, lambda: [np.asarray(v) for v in run[2](x, t, t)]) if cam is not None
             else None)
    return Probe(device_name(), max(forward, 1e-6), max(both - forward, forward),
                 activation_bytes(ex.graph), batch, compiled,
                 None if cam_s is None else max(cam_s, 1e-6),
                 float(np.mean(traces)) if traces else 0.0)


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


@dataclass
class Work:
    """What the planner sizes: the counts of the build, with the settings as planned."""

    n_test: int
    n_samples: int
    n_grid: int
    grid_classes: int
    shape: Shape
    settings: dict  # explain.<key>: value (quality_images, quality_steps, ...)
    options: dict   # {method: its options dataclass}
    quality_methods: list = field(default_factory=list)
    #: Whether the Layers page runs test images again (``settings["receptive_images"]`` of
    #: them) to find its receptive-field units; not when the GradCAM pass over the test set
    #: finds them (the explained layer is the one shown).
    rf_search: bool = False


def _method_s(p: Probe, name: str, options, shape: Shape) -> float:
    c = REGISTRY[name].cost(options, shape)
    return c.forward * p.forward_s + c.backward * p.backward_s


def estimate(p: Probe, w: Work) -> dict[str, float]:
    """Estimated seconds of each part of the work: "test set" (GradCAM of every test image,
    and of the true class from the same forward pass, at the probe's speed of that function:
    never reduced), the sample images, the class grid, the quality table's maps, curves and
    sanity check, and the Layers page (feature maps, filter patterns of three layers, the
    receptive-field search over ``receptive_images`` test images, deep dream at 12 steps an
    octave). Each part also counts the tracing of the functions it is first to run
    (``p.trace_s`` each): every method's on the sample images, again on the sanity check's
    randomized model, the curves' forward pass, and the Layers page's four."""
    s, cam, grad = w.settings, p.gradcam_s, p.forward_s + p.backward_s
    methods = {m: _method_s(p, m, o, w.shape) for m, o in w.options.items()}
    q = min(s["quality_images"], w.n_test)
    sanity = min(s["sanity_images"], q)
    curve = 0.0
    for m in w.quality_methods:
        orders = s["tie_orders"] if REGISTRY[m].output == "map" else 1
        curve += 2 * max(s["quality_steps"] - 1, 0) * orders * p.forward_s
    conv = w.shape.layer_channels is not None
    quality = bool(q and w.quality_methods)
    rf_images = min(s.get("receptive_images", 0), w.n_test) if w.rf_search else 0
    layer_traces = (1 + bool(s["pattern_filters"]) + bool(s["dream_images"])
                    + bool(rf_images)) if conv else 0
    return {  # named as the parts of Explained.seconds
        "test set": w.n_test * cam if conv else 0.0,  # the errors' true maps come with it
        "methods on sample images": w.n_samples * sum(methods.values())
        + len(w.options) * p.trace_s,
        "class grid": w.n_grid * w.grid_classes * cam if conv else 0.0,
        "quality: maps": q * sum(methods[m] for m in w.quality_methods),
        "quality: deletion/insertion": q * curve + quality * p.trace_s,
        "quality: sanity check": sanity * sum(methods[m] for m in w.quality_methods)
        + bool(sanity and quality) * len(w.quality_methods) * p.trace_s,
        "layers": (3 * s["pattern_filters"] * s["pattern_steps"]
                   + s["dream_images"] * s["dream_octaves"] * 12) * grad
        + (rf_images * p.forward_s + layer_traces * p.trace_s if conv else 0.0),
    }


def _option(w: Work, method: str, key: str, value) -> None:
    if method in w.options:
        w.options[method] = dataclasses.replace(w.options[method], **{key: value})


#: The reductions, in the order they are tried: (what, how). Each returns a description of
#: what it changed, or None when it cannot (already at its floor, or set by the user).
REDUCTIONS = ("tie_orders", "quality_images:50", "smoothgrad.samples", "integrated_gradients"
              ".steps", "scorecam.channels", "rise.masks", "quality_steps", "quality_images:20",
              "pattern_steps", "dream_octaves", "receptive_images", "drop:rise",
              "drop:occlusion", "quality_images:10", "dream_images", "pattern_filters",
              "samples_per_class", "omit:rise", "omit:occlusion", "quality_images:5")

#: Floors of the reducible settings: (explain key, floor, reduced value of the current one).
_SETTINGS = {"tie_orders": (1, lambda v: 1), "quality_steps": (4, lambda v: max(4, v // 2)),
             "pattern_steps": (10, lambda v: max(10, v // 4)),
             "dream_octaves": (1, lambda v: 1), "dream_images": (0, lambda v: 0),
             "receptive_images": (64, lambda v: max(64, v // 8)),
             "pattern_filters": (0, lambda v: 0)}
_OPTIONS = {"smoothgrad.samples": (4, lambda v: max(4, v // 2)),
            "integrated_gradients.steps": (8, lambda v: max(8, v // 2)),
            "scorecam.channels": (8, lambda v: max(8, v // 2)),
            "rise.masks": (500, lambda v: max(500, v // 4))}


#: The keys the reductions change (a key set by the user is kept as it is).
REDUCIBLE = {"explain.methods", "explain.quality_images", "explain.sanity_images",
             "explain.samples_per_class",
             *(f"explain.{k}" for k in (*_SETTINGS, *_OPTIONS))}


def _reduce(step: str, w: Work, given: set[str]) -> str | None:
    s = w.settings
    if step.startswith("quality_images:"):
        floor = int(step.split(":")[1])
        if "explain.quality_images" in given or min(s["quality_images"], w.n_test) <= floor:
            return None
        old, s["quality_images"] = s["quality_images"], floor
        s["sanity_images"] = min(s["sanity_images"], floor)
        return f"explain.quality_images {old} → {floor}"
    if step.startswith("omit:"):  # the last resort: not even on the sample images
        m = step.split(":")[1]
        if m not in w.options or "explain.methods" in given:
            return None
        del w.options[m]
        if m in w.quality_methods:
            w.quality_methods.remove(m)
        return (f"{REGISTRY[m].label} left out (over the budget on the sample images alone; "
                "name it in explain.methods to keep it)")
    if step == "samples_per_class":
        if step not in s or "explain.samples_per_class" in given or s[step] <= 1 \
                or w.n_samples <= w.n_grid:
            return None
        old, s[step], w.n_samples = s[step], 1, w.n_grid  # one image of each shown class
        return f"explain.samples_per_class {old} → 1"
    if step.startswith("drop:"):
        m = step.split(":")[1]
        if m not in w.quality_methods or "explain.methods" in given:
            return None
        w.quality_methods.remove(m)
        return f"{REGISTRY[m].label} left out of the quality table (shown on the samples)"
    if step == "receptive_images" and (not w.rf_search or w.n_test <= _SETTINGS[step][0]):
        return None  # no search, or one over so few images that fewer save nothing
    if step in _SETTINGS:
        floor, smaller = _SETTINGS[step]
        if f"explain.{step}" in given or s[step] <= floor:
            return None
        old, s[step] = s[step], smaller(s[step])
        return f"explain.{step} {old} → {s[step]}"
    method, key = step.split(".")
    floor, smaller = _OPTIONS[step]
    opts = w.options.get(method)
    if opts is None or f"explain.{step}" in given or getattr(opts, key) <= floor:
        return None
    old = getattr(opts, key)
    _option(w, method, key, smaller(old))
    return f"explain.{step} {old} → {getattr(w.options[method], key)}"


def _reduce_until(steps, w: Work, given: set[str], cost, limit: float) -> list[str]:
    """Take ``steps`` (see :func:`_reduce`) in order while ``cost()`` is over ``limit``;
    return what each step that changed something did."""
    reduced = []
    for step in steps:
        if cost() <= limit:
            break
        what = _reduce(step, w, given)
        if what:
            reduced.append(what)
    return reduced


def make_plan(p: Probe, w: Work, budget_s: float, memory: int, given: set[str],
              batch_size: int) -> dict:
    """The plan of the work ``w`` on probe ``p``: reductions in :data:`REDUCTIONS` order until
    the estimate fits ``budget_s`` (``w`` is changed in place to the planned settings), and the
    batch sizes (``batch_size`` when the user set ``explain.batch_size``, else what ``memory``
    bytes hold: of a backward pass, and of a forward pass alone for the methods without one
    and the deletion/insertion curves). Returns it as plain data."""
    per_image = BACKWARD_FACTOR * p.activation_bytes
    fits = memory_batch(p.activation_bytes, memory)
    user = "explain.batch_size" in given
    batch = batch_size if user else fits
    forward = batch if user else memory_batch(p.activation_bytes, memory, FORWARD_FACTOR)
    full = estimate(p, w)
    reduced = _reduce_until(REDUCTIONS, w, given, lambda: sum(estimate(p, w).values()),
                            budget_s)
    planned = estimate(p, w)
    notes = []
    total = sum(planned.values())
    if total > budget_s:
        kept = sorted(k for k in given if k in REDUCIBLE)
        notes.append(f"Over the budget: about {total:.0f} s of work against "
                     f"explain.budget = {budget_s:g} s"
                     + (f"; set by you and kept: {', '.join(kept)}" if kept else
                        "; the unavoidable work and the smallest extras take that long"))
    if batch > fits:
        notes.append(f"explain.batch_size = {batch} (set by you) needs about "
                     f"{batch * per_image / 2**30:.1f} GiB, more than the memory budget of "
                     f"{memory / 2**30:.1f} GiB")
    return {"device": p.device, "budget_s": budget_s, "memory_bytes": int(memory),
            "timed": "compiled" if p.compiled else "forward eagerly (an upper bound), "
                                                  "gradients compiled",
            "forward_images_per_s": round(p.images_per_s[0], 2),
            "backward_images_per_s": round(p.images_per_s[1], 2),
            "gradcam_images_per_s": round(1.0 / p.gradcam_s, 2),
            "trace_s": round(p.trace_s, 3),
            "activation_bytes_per_image": p.activation_bytes, "batch_size": int(batch),
            "forward_batch_size": int(forward),
            "batch_sizes": {m: int(forward if REGISTRY[m].cost(o, w.shape).backward == 0
                                   else batch) for m, o in w.options.items()},
            "estimate_full_s": {k: round(v, 1) for k, v in full.items()},
            "estimate_s": {k: round(v, 1) for k, v in planned.items()},
            "reduced": reduced, "notes": notes, "settings": dict(w.settings),
            "quality_methods": list(w.quality_methods),
            "method_s": {m: round(_method_s(p, m, o, w.shape), 5) for m, o in w.options.items()}}


#: The reductions a re-plan may still take once the sample images are explained: the quality
#: table's and the Layers page's sizes only (the methods' options stay as the sample images
#: used them, so every map of a method is made alike).
LATE_REDUCTIONS = ("tie_orders", "quality_images:50", "quality_steps", "quality_images:20",
                   "pattern_steps", "dream_octaves", "receptive_images", "drop:rise",
                   "drop:occlusion", "quality_images:10", "dream_images", "pattern_filters",
                   "quality_images:5")
#: The parts of the estimate still to run when the re-plan is made.
LATE_PARTS = ("quality: maps", "quality: deletion/insertion", "quality: sanity check", "layers")
#: The parts the re-plan measures the plan by.
EARLY_PARTS = ("test set", "methods on sample images", "class grid")


def replan(plan: dict, p: Probe, w: Work, measured: dict[str, float], given: set[str]) -> list:
    """Re-plan the rest of the work after the early parts ran: when they took longer than
    planned (``measured`` seconds of :data:`EARLY_PARTS` against the plan's estimate), every
    later part is assumed slower by that ratio too, and :data:`LATE_REDUCTIONS` are taken in
    order until the rest fits what is left of the budget. ``w`` (the planned work) and
    ``plan`` change in place: its settings, quality methods, estimate of the later parts
    (at the measured speed) and reductions, each marked as made on re-planning, and
    ``plan["replan"]`` (the ratio and the seconds left). Returns the new reductions; none when
    the early parts were on time."""
    first = estimate(p, w)
    planned = sum(first[k] for k in EARLY_PARTS)
    spent = sum(measured.get(k, 0.0) for k in EARLY_PARTS)
    ratio = spent / max(planned, 1e-9)
    left = plan["budget_s"] - spent
    plan["replan"] = {"ratio": round(ratio, 3), "early_s": round(spent, 1),
                      "left_s": round(left, 1)}
    if ratio <= 1.0:
        return []
    slow = dataclasses.replace(p, forward_s=p.forward_s * ratio, backward_s=p.backward_s * ratio,
                               cam_s=None if p.cam_s is None else p.cam_s * ratio,
                               trace_s=p.trace_s * ratio)

    def rest() -> float:
        return sum(estimate(slow, w)[k] for k in LATE_PARTS)

    reduced = [f"{what} (re-planned: the work so far took {ratio:.2f}x its estimate)"
               for what in _reduce_until(LATE_REDUCTIONS, w, given, rest, left)]
    est = estimate(slow, w)
    plan["estimate_s"].update({k: round(est[k], 1) for k in LATE_PARTS})
    plan["reduced"] += reduced
    plan["replan"]["reduced"] = len(reduced)
    plan["settings"] = dict(w.settings)
    plan["quality_methods"] = list(w.quality_methods)
    return reduced


def progress_steps(plan: dict, scored: list[str]) -> list[float]:
    """The planned seconds of each step of the "Methods and quality" progress bar: the sample
    images and class grid, then one step per method of ``scored`` (its maps, curves and
    sanity check, each part of the estimate shared by the methods' costs per image), so the
    bar's ETA follows the plan."""
    est, cost = plan.get("estimate_s", {}), plan.get("method_s", {})
    first = est.get("methods on sample images", 0.0) + est.get("class grid", 0.0)
    quality = sum(est.get(k, 0.0) for k in ("quality: maps", "quality: deletion/insertion",
                                            "quality: sanity check"))
    total = sum(cost.get(m, 0.0) for m in scored)
    return [first] + [quality * (cost.get(m, 0.0) / total if total else 1 / len(scored))
                      for m in scored]
