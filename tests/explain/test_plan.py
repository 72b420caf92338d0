"""The planner: estimates from the declared costs, reductions in their documented order until
the estimate fits, keys the user set kept, batch sizes from memory, and a probe that measures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from reportgen.explain import plan as pl
from reportgen.explain.methods import REGISTRY, Shape, configure


def work(methods=("gradcam", "smoothgrad", "rise")):
    from reportgen.config import Config

    options = {m: o for m, o in configure(Config()).items() if m in methods}
    settings = {"quality_images": 100, "quality_steps": 8, "tie_orders": 3, "sanity_images": 16,
                "pattern_filters": 8, "pattern_steps": 40, "dream_images": 3, "dream_octaves": 3,
                "samples_per_class": 2, "receptive_images": 512}
    return pl.Work(n_test=500, n_samples=10, n_grid=5, grid_classes=5,
                   shape=Shape(224, 224, 1280), settings=settings, options=options,
                   quality_methods=list(options))


PROBE = pl.Probe("CPU", forward_s=0.01, backward_s=0.02, activation_bytes=10**6, batch=16)


def test_the_estimate_is_the_declared_cost_times_the_measured_seconds():
    w = work()
    est = pl.estimate(PROBE, w)
    cam = 0.01 + 0.02
    assert est["test set"] == pytest.approx(500 * cam)  # the true-class maps in the same pass
    per_image = sum(REGISTRY[m].cost(o, w.shape).forward * 0.01
                    + REGISTRY[m].cost(o, w.shape).backward * 0.02 for m, o in w.options.items())
    assert est["quality: maps"] == pytest.approx(100 * per_image)
    # Deletion and insertion: 2 curves of 7 inner steps, 3 tie orders for the two maps
    # (GradCAM, RISE), 1 for SmoothGrad's attributions.
    assert est["quality: deletion/insertion"] == pytest.approx(100 * 2 * 7 * (3 + 3 + 1) * 0.01)
    assert est["layers"] == pytest.approx((3 * 8 * 40 + 3 * 3 * 12) * cam)
    # With GradCAM timed by the probe (backward through the head only), the test set and the
    # class grid cost that; the rest is unchanged.
    timed = pl.estimate(pl.Probe("CPU", 0.01, 0.02, 10**6, 16, cam_s=0.012), w)
    assert timed["test set"] == pytest.approx(500 * 0.012)
    assert timed["class grid"] == pytest.approx(5 * 5 * 0.012)
    assert timed["layers"] == est["layers"] and timed["quality: maps"] == est["quality: maps"]


def test_the_explorer_map_is_a_part_of_the_estimate():
    w = work()
    assert pl.estimate(PROBE, w)["explorer map"] == 0  # no point, no map
    est = pl.estimate(PROBE, dataclasses.replace(w, map_points=5000))
    # 0.6 s + 0.18 ms a point x log2(5001) = 0.6 + 11.06 (13.0 s measured for 5,000 points).
    assert est["explorer map"] == pytest.approx(0.6 + 0.00018 * 5000 * 12.2882, rel=1e-4)
    assert est["explorer map"] < 30
    assert pl.map_seconds(1000) < pl.map_seconds(2000) < 2 * pl.map_seconds(1000) + 1
    # Stated, but no explanation is reduced to make room for it.
    w = dataclasses.replace(w, map_points=5000)
    budget = pl.budgeted(pl.estimate(PROBE, w)) + 0.5
    plan = pl.make_plan(PROBE, w, budget, 2**30, set(), 16)
    assert plan.reductions == () and plan.estimate_s["explorer map"] > 10


def test_the_data_audit_is_a_part_of_the_estimate_as_given():
    w = work()
    assert pl.estimate(PROBE, w)["data audit"] == 0  # off, or nothing to audit
    assert pl.estimate(PROBE, dataclasses.replace(w, audit_s=4.5))["data audit"] == 4.5


def test_the_estimate_counts_tracing_and_the_receptive_field_search(monkeypatch):
    from reportgen.explain import graph

    monkeypatch.setattr(graph, "COMPILE_AFTER", 96)  # as a build runs (not the test tiers')
    w = work()
    base = pl.estimate(PROBE, w)
    w = dataclasses.replace(w, rf_search=True).with_settings(receptive_images=100)
    traced = pl.estimate(pl.Probe("CPU", 0.01, 0.02, 10**6, 16, trace_s=2.0), w)
    extra = {k: traced[k] - base[k] for k in base}
    # One trace per compiled function on the samples: GradCAM's and RISE's (SmoothGrad runs
    # the input gradient the probe compiled), the curves' forward pass (1), each method's
    # function again on the sanity check's randomized model (3) and its copy of the model (as
    # a forward pass's trace: 1); the Layers page's patterns and deep dream (2; its feature
    # maps of one image run eagerly, at no cost on this probe), and the receptive-field
    # search's 100 forward passes, in 7 batches of 16: 100 + 7 x 16 images' eager work, more
    # than the 96 a function runs eagerly, so it is compiled too (1).
    assert extra == pytest.approx({"test set": 0, "methods on sample images": 2 * 2.0,
                                   "class grid": 0, "quality: maps": 0,
                                   "quality: deletion/insertion": 1 * 2.0,
                                   "quality: sanity check": 4 * 2.0,
                                   "layers": 3 * 2.0 + 100 * 0.01,
                                   "strategies": 0, "concepts": 0,
                                   "explorer map": 0, "data audit": 0})
    # A search of 40 images in batches of 20 is 2 calls, 40 + 2 x 16 images' work: run
    # eagerly, 0.5 s a call, as are the feature maps of three layers; no trace.
    wide = pl.estimate(pl.Probe("CPU", 0.01, 0.02, 10**6, 20, trace_s=2.0, eager_s=0.5),
                       w.with_settings(receptive_images=40))
    assert wide["layers"] - base["layers"] == pytest.approx(2 * 2.0 + 40 * 0.01
                                                            + (2 + 3) * 0.5)
    # Without patterns, dreams or a sanity check, their traces go too.
    w = w.with_settings(pattern_filters=0, dream_images=0, sanity_images=0)
    # Methods sharing a function trace it once: saliency, SmoothGrad and Integrated
    # Gradients run the input gradient (compiled by the probe); Guided GradCAM runs guided
    # backprop's gradient and GradCAM's map.
    assert pl.traces(["saliency", "smoothgrad", "integrated_gradients"], pl.PROBED) == 0
    assert pl.traces(["gradcam", "guided_backprop", "guided_gradcam"]) == 2
    assert pl.traces(["saliency", "occlusion", "rise"]) == 3
    bare = pl.estimate(pl.Probe("CPU", 0.01, 0.02, 10**6, 16, trace_s=2.0), w)
    assert bare["layers"] == pytest.approx(1 * 2.0 + 100 * 0.01)
    assert bare["quality: sanity check"] == 0


def test_the_estimate_counts_strategies_and_concepts():
    w = dataclasses.replace(work(), n_concepts=96)
    est = pl.estimate(pl.Probe("CPU", 0.01, 0.02, 10**6, 16, trace_s=2.0), w)
    # numpy: 0.12 ms a test map; concepts: a forward and a backward pass of each of the
    # 96 factorised images and one trace (of a CAM-like function, 2 s)
    assert est["strategies"] == pytest.approx(w.n_test * 1.2e-4)
    assert est["concepts"] == pytest.approx(96 * (0.01 + 0.02) + 2.0)
    assert pl.estimate(PROBE, work())["concepts"] == 0


def test_each_function_is_traced_at_the_probes_trace_of_its_kind(monkeypatch):
    """A probe whose forward function traced in 1 s, its input gradient in 3 s and its
    GradCAM in 1.5 s: every compiled function a method names costs the trace of its kind."""
    from reportgen.explain import graph

    monkeypatch.setattr(graph, "COMPILE_AFTER", 96)  # as a build runs (not the test tiers')
    p = pl.Probe("CPU", 0.01, 0.02, 10**6, 16, trace_s=1.0,
                 trace_scale={"forward": 1.0, "gradient": 3.0, "cam": 1.5}, eager_s=0.5)
    assert [p.trace(k) for k in ("forward", "gradient", "cam")] == [1.0, 3.0, 1.5]
    methods = ["gradcam", "guided_backprop", "deconvnet", "guided_gradcam", "scorecam",
               "saliency", "occlusion"]
    # GradCAM's map 1.5; guided backprop's and deconvnet's gradients 3 + 3 (Guided GradCAM
    # reuses guided backprop's and GradCAM's); Score-CAM's activations and occlusion's
    # forward passes 1 + 1. The probe's own (probabilities, the input gradient) are not
    # traced again on the samples, but are on the sanity check's randomized model: + 1 + 3.
    assert pl.trace_seconds(p, methods, pl.PROBED) == pytest.approx(1.5 + 3 + 3 + 1 + 1)
    assert pl.trace_seconds(p, methods) == pytest.approx(9.5 + 1 + 3)
    w = dataclasses.replace(work(tuple(methods)), rf_search=False)
    est = pl.estimate(p, w)
    bare = pl.estimate(dataclasses.replace(p, trace_s=0.0, eager_s=0.0), w)
    assert est["methods on sample images"] - bare["methods on sample images"] == \
        pytest.approx(9.5)
    # The sanity check: those 13.5 s, and the randomized copy of the model (a forward
    # pass's trace, 1 s, and an eager forward pass for its shapes, 0.5 s).
    assert est["quality: sanity check"] - bare["quality: sanity check"] == pytest.approx(15.0)
    assert est["quality: deletion/insertion"] - bare["quality: deletion/insertion"] == 1.0
    # The Layers page: patterns and deep dream, a gradient function each; the feature maps
    # of three layers, an eager call each.
    assert est["layers"] - bare["layers"] == pytest.approx(2 * 3.0 + 3 * 0.5)
    # With receptive-field units shown, their analysis walks the layers: two eager calls.
    shown = pl.estimate(p, w.with_settings(receptive_units=3))
    assert shown["layers"] - est["layers"] == pytest.approx(2 * 0.5)
    # Scaling trace_s (as the re-plan does) scales every kind; a kind the probe did not time
    # (a model without a conv layer has no GradCAM) counts as the costliest it did.
    assert dataclasses.replace(p, trace_s=2.0).trace("gradient") == 6.0
    no_cam = pl.Probe("CPU", 0.01, 0.02, 10**6, 16, trace_s=0.5,
                      trace_scale={"forward": 1.0, "gradient": 4.0})
    assert no_cam.trace("cam") == no_cam.trace("a function of a new method") == 2.0
    # Every function a registered method names declares a kind the probe times, and a spec
    # with an unknown kind is refused where it is declared.
    from reportgen.explain.methods.spec import TRACE_KINDS
    kinds = {k for spec in REGISTRY.values() for k in spec.functions.values()}
    assert kinds <= set(TRACE_KINDS) and len(kinds) == 3
    with pytest.raises(ValueError, match="trace kind"):
        dataclasses.replace(REGISTRY["rise"], trace="backward")


def test_every_call_of_a_small_batch_costs_the_probes_call_latency(monkeypatch):
    """A probe measuring 0.1 s a call beyond its images' share, in batches of 16: its seconds
    per image, timed on full batches, carry that latency once a batch, so a call of k images
    pays 0.1 * (1 - k / 16) more; each method's run on n images makes its calls in batches
    of the kind of pass it makes more of."""
    from reportgen.explain import graph

    monkeypatch.setattr(graph, "COMPILE_AFTER", 96)  # as a build runs (not the test tiers')
    w = work(("gradcam", "smoothgrad", "rise"))
    p = pl.Probe("CPU", 0.01, 0.02, 10**6, 16, call_s=0.1)
    est, bare = pl.estimate(p, w), pl.estimate(dataclasses.replace(p, call_s=0.0), w)
    extra = {k: est[k] - bare[k] for k in est}
    # 10 sample images: GradCAM 10 passes in 1 call (1 - 10/16); SmoothGrad 11 forward
    # passes an image, 110 in 7 calls (7 - 110/16); RISE 501 an image, 5010 in 314 calls.
    assert extra["methods on sample images"] == pytest.approx(
        0.1 * ((1 - 10 / 16) + (7 - 110 / 16) + (314 - 5010 / 16)))
    # The quality table's 100 images: 100, 1100 and 50100 passes in 7, 69 and 3132 calls; the
    # sanity check's 16: whole batches only.
    assert extra["quality: maps"] == pytest.approx(
        0.1 * ((7 - 100 / 16) + (69 - 1100 / 16) + (3132 - 50100 / 16)))
    assert extra["quality: sanity check"] == pytest.approx(0.0)
    # The test set's 500 images in 32 calls; the class grid: 5 classes of 5 images.
    assert extra["test set"] == pytest.approx(0.1 * (32 - 500 / 16))
    assert extra["class grid"] == pytest.approx(0.1 * 5 * (1 - 5 / 16))
    # The curves: 7 inner steps, so 16 // 7 = 2 images a call (14 of a batch's 16): 2 curves
    # x 50 calls in each of 3 + 3 + 1 orders (GradCAM's and RISE's maps, SmoothGrad's
    # attributions); and one call for each method's baseline.
    assert extra["quality: deletion/insertion"] == pytest.approx(
        0.1 * (7 * 100 * (1 - 14 / 16) + 3))


def test_a_few_quality_images_run_their_curves_eagerly_until_the_allowance():
    """2 quality images, 4 steps (3 inner), batches of 16: 5 images a call, 2 calls a method
    (2 curves of 1 call) on 12 copies: 12 + 2 x 16 = 44 images' eager work. GradCAM's and
    SmoothGrad's run eagerly (88 of the 96 allowed); RISE's would pass it, so the function
    is traced and its 2 calls compiled."""
    from reportgen.explain import graph

    w = work(("gradcam", "smoothgrad", "rise")).with_settings(
        quality_images=2, quality_steps=4, tie_orders=1)
    p = pl.Probe("CPU", 0.01, 0.02, 10**6, 16, trace_s=1.0, eager_s=0.5, call_s=0.1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(graph, "COMPILE_AFTER", 96)
        curves = pl.estimate(p, w)["quality: deletion/insertion"]
    passes = 2 * 2 * 3 * 3
    # The 2 compiled calls of 15 images pay 1/16 of a call's latency each; the baselines one.
    assert curves == pytest.approx(passes * 0.01 + 4 * 0.5 + 1.0 + (2 / 16 + 3) * 0.1)


def test_a_cheap_model_keeps_the_full_report():
    w = work()
    plan = pl.make_plan(pl.Probe("CPU", 1e-5, 1e-5, 1000, 16), w, 600, 2**30, set(), 64)
    assert plan.reductions == () and plan.notes == () and plan.fits_as_asked
    assert {k: plan.settings[k] for k in w.settings} == w.settings
    assert plan.options == w.options
    assert plan.quality_methods == ["gradcam", "smoothgrad", "rise"]


def test_an_expensive_model_is_reduced_in_order_until_it_fits():
    w = work()
    plan = pl.make_plan(PROBE, w, 120.0, 2**30, set(), 64)
    assert sum(plan.estimate_s.values()) <= 120.0
    assert plan.reduced[:3] == ["explain.tie_orders 3 → 1", "explain.quality_images 100 → 50",
                                   "explain.smoothgrad.samples 10 → 5"]
    assert sum(plan.estimate_full_s.values()) > 120.0
    assert plan.reductions[2] == pl.Reduction("explain.smoothgrad.samples", 10, 5)
    assert plan.notes == ()
    # The plan holds the work as run; the work asked for is as it was.
    assert plan.settings["tie_orders"] == 1 and w.settings["tie_orders"] == 3
    assert plan.options["smoothgrad"].samples == 5 and w.options["smoothgrad"].samples == 10
    # The unavoidable part is never reduced.
    assert plan.estimate_s["test set"] == plan.estimate_full_s["test set"]


def test_a_model_too_slow_for_its_sample_images_loses_them_last():
    w = work(("gradcam", "rise", "occlusion"))
    # RISE alone on the 10 sample images is 10 x 501 forward passes: 501 s at 0.1 s a pass.
    slow = pl.Probe("CPU", forward_s=0.1, backward_s=0.2, activation_bytes=10**6, batch=16)
    plan = pl.make_plan(slow, w, 300.0, 2**30, set(), 64)
    # The last two steps, taken only after every other: one sample image a class, then RISE
    # left out altogether; occlusion then fits on the samples (out of the quality table).
    assert plan.reduced[-2:] == [
        "explain.samples_per_class 2 → 1",
        "RISE left out (over the budget on the sample images alone; name it in "
        "explain.methods to keep it)"]
    assert plan.reductions[-1] == pl.Reduction(
        "explain.methods", ("gradcam", "occlusion", "rise"), ("gradcam", "occlusion"),
        pl.OVER_ON_SAMPLES)
    assert list(plan.options) == ["gradcam", "occlusion"] and plan.quality_methods == ["gradcam"]
    assert plan.settings["methods"] == ["gradcam", "occlusion"]
    assert plan.settings["samples_per_class"] == 1 and plan.work.n_samples == w.n_grid == 5
    assert sum(plan.estimate_s.values()) <= 300.0
    # Each step was needed: the sample images at 2 a class with RISE alone are over 300 s.
    assert plan.estimate_full_s["methods on sample images"] > 300
    # Methods the user named are never left out.
    kept = pl.make_plan(slow, work(("gradcam", "rise")), 300.0, 2**30, {"explain.methods"}, 64)
    assert "rise" in kept.quality_methods and not any("left out" in r
                                                          for r in kept.reduced)


def test_keys_the_user_set_are_kept_and_the_plan_says_so():
    w = work()
    given = {"explain.quality_images", "explain.tie_orders"}
    plan = pl.make_plan(PROBE, w, 1.0, 2**30, given, 64)
    assert plan.settings["quality_images"] == 100 and plan.settings["tie_orders"] == 3
    assert not any("quality_images" in r or "tie_orders" in r for r in plan.reduced)
    assert len(plan.notes) == 1 and "explain.quality_images, explain.tie_orders" in \
        plan.notes[0]


def test_the_batch_follows_the_memory_unless_set():
    w = work()
    # 3 x 1 MB per image in 80 % of 100 MB: 26 images; a forward pass alone, 2 MB: 40.
    plan = pl.make_plan(PROBE, w, 1e9, 100 * 10**6, set(), 64)
    assert plan.batch_size == 26 and plan.forward_batch_size == 40
    # RISE has no backward pass: it gets the forward batch; SmoothGrad and GradCAM do not.
    assert plan.batch_sizes == {"gradcam": 26, "smoothgrad": 26, "rise": 40}
    given = pl.make_plan(PROBE, work(), 1e9, 100 * 10**6, {"explain.batch_size"}, 64)
    assert given.forward_batch_size == 64 and set(given.batch_sizes.values()) == {64}
    assert pl.make_plan(PROBE, w, 1e9, 10**12, set(), 64).batch_size == pl.MAX_BATCH
    plan = pl.make_plan(PROBE, work(), 1e9, 10 * 10**6, {"explain.batch_size"}, 64)
    assert plan.batch_size == 64 and "more than the memory budget" in plan.notes[0]


def test_a_method_runs_at_its_planned_batch(keras):
    from reportgen.explain.explainer import Explainer

    inp = keras.Input((8, 8, 1))
    out = keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inp)))
    ex = Explainer(keras.Model(inp, out), batch_size=3)
    seen = []
    spec = REGISTRY["saliency"]
    original = spec.run

    def spy(e, *args):
        seen.append(e.batch_size)
        return original(e, *args)
    try:
        object.__setattr__(spec, "run", spy)
        ex.batch_sizes = {"saliency": 7}
        ex.run("saliency", np.zeros((2, 8, 8, 1), np.float32))
        ex.batch_sizes = {}
        ex.run("saliency", np.zeros((2, 8, 8, 1), np.float32))
    finally:
        object.__setattr__(spec, "run", original)
    assert seen == [7, 3] and ex.batch_size == 3


def test_the_probe_measures_time_and_counts_activations(keras, tier):
    from reportgen.explain.explainer import Explainer

    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    out = keras.layers.Dense(2, name="head")(keras.layers.Flatten(name="flat")(h))
    ex = Explainer(keras.Model(inp, out))
    p = pl.probe(ex, np.zeros((3, 8, 8, 1), np.float32), batch=5)
    assert p.batch == 5 and p.forward_s > 0 and p.backward_s > 0 and not p.compiled
    assert p.cam_s > 0
    from reportgen.explain.common import probability_function
    from reportgen.explain.gradients import gradient_function
    assert probability_function(ex.graph).eager_calls == 0  # the eager probe is not counted
    # Gradients never run eagerly (oneDNN crashes on some eager conv gradients): the eager
    # probe traced the gradient function, and counts that trace.
    assert gradient_function(ex.graph).compiled is not None
    assert probability_function(ex.graph).compiled is None
    assert p.trace_s > 0 and gradient_function(ex.graph).trace_s > 0
    c = pl.probe(ex, np.zeros((3, 8, 8, 1), np.float32), batch=5, compiled=True)
    assert c.compiled and c.trace_s >= 0
    if tier == "compiled":  # (the eager tier of these tests never compiles a forward pass)
        assert probability_function(ex.graph).compiled is not None
        assert c.trace_s > 0  # the first call of a tf.function traces it
    # Outputs of conv (8 x 8 x 4), flat (256) and head (2), float32.
    assert p.activation_bytes == pl.activation_bytes(ex.graph) == 4 * (256 + 256 + 2)
    # Without a conv layer there is no GradCAM to time: it is costed as forward + backward.
    flat_in = keras.Input((8, 8, 1))
    dense = Explainer(keras.Model(flat_in, keras.layers.Dense(2)(keras.layers.Flatten()(
        flat_in))))
    q = pl.probe(dense, np.zeros((2, 8, 8, 1), np.float32), batch=2)
    assert q.cam_s is None and q.gradcam_s == q.forward_s + q.backward_s


def test_a_small_test_set_is_not_reduced_below_what_it_has():
    w = dataclasses.replace(work(), n_test=20)  # 20 photos: 100 quality images are 20 already
    plan = pl.make_plan(PROBE, w, 1.0, 2**30, set(), 64)
    assert not any(r.startswith("explain.quality_images 100 → 50") for r in plan.reduced)
    assert "explain.quality_images 100 → 10" in plan.reduced


def test_the_memory_budget_is_half_of_what_is_available_at_most_2_gib(monkeypatch):
    monkeypatch.setattr(pl, "available_memory", lambda: 3 * 2**30)
    assert pl.memory_budget(0) == 1.5 * 2**30
    monkeypatch.setattr(pl, "available_memory", lambda: 64 * 2**30)
    assert pl.memory_budget(0) == 2 * 2**30
    assert pl.memory_budget(6) == 6 * 2**30  # as set


def test_the_default_budget_is_thirty_predict_passes_within_three_and_fifteen_minutes():
    p = pl.Probe("CPU", forward_s=0.02, backward_s=0.04, activation_bytes=1, batch=4)
    assert pl.time_budget(0, p, 500) == pytest.approx(30 * 500 * 0.02)  # 300 s
    assert pl.time_budget(0, p, 10) == pl.MIN_BUDGET == 180  # a small test set: three minutes
    assert pl.time_budget(0, p, 10**5) == pl.MAX_BUDGET == 900  # a huge one: fifteen
    assert pl.time_budget(45, p, 500) == 45  # as set


def test_the_progress_bar_steps_follow_the_plan():
    from reportgen import progress as prog

    w = work()
    plan = pl.make_plan(PROBE, w, 120.0, 2**30, set(), 64)
    est, cost = plan.estimate_s, plan.method_s
    steps = pl.progress_steps(plan, plan.quality_methods)
    # The samples and grid first, then each method's share of the three quality parts by
    # its cost per image; together they are the plan's estimate of this bar's work.
    assert steps[0] == pytest.approx(est["methods on sample images"] + est["class grid"])
    quality = est["quality: maps"] + est["quality: deletion/insertion"] \
        + est["quality: sanity check"]
    total = sum(cost[m] for m in plan.quality_methods)
    for m, s in zip(plan.quality_methods, steps[1:], strict=True):
        assert s == pytest.approx(quality * cost[m] / total)
    assert cost["rise"] > cost["gradcam"]
    # The bar advances by each step's tenths of a second, one step per call.
    got = []
    advance = prog.weighted(got.append, [0.04, 2.0, 0.35])
    advance()
    advance(2)
    advance()  # past the last step: nothing
    assert got == [1, 20, 4] and prog.steps([0.04, 2.0, 0.35]) == 25


def test_the_predictions_batch_is_planned_from_memory_unless_set(keras):
    import dataclasses

    from reportgen.config import Config
    from reportgen.explain.graph import ModelGraph
    from reportgen.pipeline.stages import predict_batch

    inp = keras.Input((8, 8, 1))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(
        keras.layers.Conv2D(4, 3, padding="same")(inp))))
    act = pl.activation_bytes(ModelGraph(model))
    assert act == 4 * (256 + 256 + 2)
    cfg = Config()
    cfg = dataclasses.replace(cfg, explain=dataclasses.replace(cfg.explain, memory_gb=1e-4))
    # 80 % of 1e-4 GiB over 2 bytes per activation byte of a forward pass alone.
    assert predict_batch(cfg, model, (8, 8, 1)) == int(0.8 * 1e-4 * 2**30 // (2 * act)) == 20
    cfg.given = frozenset({"explain.batch_size"})
    assert predict_batch(cfg, model, (8, 8, 1)) == cfg.explain.batch_size == 64


def test_a_slow_start_re_plans_the_quality_table_and_layers_only():
    plan = pl.make_plan(PROBE, work(), 400.0, 2**30, set(), 64)
    assert sum(plan.estimate_s.values()) <= 400.0
    early = {k: v for k, v in pl.estimate(PROBE, plan.work).items() if k in pl.EARLY_PARTS}
    # On time: nothing changes but the record of the re-plan.
    on_time = pl.replan(plan, early, set())
    assert on_time.replan.ratio == 1.0 and on_time.replan.reduced == 0
    assert on_time.work == plan.work and on_time.reductions == plan.reductions
    # Twice as slow as planned: the rest is re-planned at twice the probe's times, into what
    # is left of the budget, with the late reductions only, in a new plan (the old one stays).
    slow = {k: 2 * v for k, v in early.items()}
    left = 400.0 - sum(slow.values())
    late = pl.replan(plan, slow, set())
    new = late.reductions[len(plan.reductions):]
    assert late.reductions[:len(plan.reductions)] == plan.reductions and plan.replan is None
    why = "re-planned: the work so far took 2.00x its estimate"
    assert new and all(r.why in (why, f"{pl.AT_MOST_QUALITY}; {why}") for r in new)
    assert all(line.endswith(f"{why})") for line in late.reduced[-len(new):])
    # Each is a late reduction, in LATE_REDUCTIONS order (what make_plan had left to take).
    steps = []
    for r in new:
        if r.key == "explain.quality_images":
            steps.append(f"quality_images:{r.used}")
        elif r.key == "quality_methods":
            steps.append("drop optional")
        elif r.key != "explain.sanity_images":
            steps.append(r.key.split(".")[1])
    order = [pl.LATE_REDUCTIONS.index(st) for st in steps]
    assert order == sorted(order)
    assert late.options == plan.options  # the methods' options stay as the samples used them
    doubled = pl.Probe("CPU", 0.02, 0.04, 10**6, 16)
    est = pl.estimate(doubled, late.work)
    assert sum(est[k] for k in pl.LATE_PARTS) <= left
    assert late.estimate_s["quality: maps"] == pytest.approx(est["quality: maps"], abs=0.05)
    assert late.estimate_s["test set"] == plan.estimate_s["test set"]
    assert late.replan.ratio == 2.0 and late.replan.reduced == len(new)
    assert late.replan.left_s == pytest.approx(left, abs=0.05)
    # A key the user set is kept on re-planning too.
    plan2 = pl.make_plan(PROBE, work(), 400.0, 2**30, {"explain.quality_images"}, 64)
    late2 = pl.replan(plan2, slow, {"explain.quality_images"})
    assert late2.settings["quality_images"] == 100


def test_the_documented_default_budget_is_the_planners():
    from reportgen.config import ExplainConfig

    doc = ExplainConfig.__dataclass_fields__["budget"].metadata
    text = " ".join(str(v) for v in doc.values())
    assert f"{pl.BUDGET_PASSES} predict passes" in text
    assert f"within {pl.MIN_BUDGET:g}-{pl.MAX_BUDGET:g} s" in text
    readme = (__import__("pathlib").Path(__file__).parents[2] / "README.md").read_text()
    assert f"within {pl.MIN_BUDGET:g}-{pl.MAX_BUDGET:g} s" in readme


def _fake_clock_and_explainer(keras, monkeypatch, durations):
    """The planner's clock made to advance by the next of ``durations`` between each start
    and stop reading (one timed call each), and an explainer of a small conv model."""
    import types

    from reportgen.explain.explainer import Explainer

    class Clock:
        def __init__(self):
            self.t, self.running = 0.0, False

        def __call__(self):
            if self.running:
                self.t += next(durations)
            self.running = not self.running
            return self.t

    monkeypatch.setattr(pl, "time", types.SimpleNamespace(perf_counter=Clock()))
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    return Explainer(keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(h))))


def test_the_probe_takes_the_median_of_a_second_of_calls(keras, monkeypatch):
    """With a clock that makes every function's calls last 5.0 s (the first: tracing), then
    0.4, 0.2, 0.3, 0.2 s: the calls go on until they add up to a second (four), the time is
    their median (0.25 s a batch of 5), and the trace the first call's excess (4.75 s)."""
    import itertools

    durations = itertools.cycle([5.0, 0.4, 0.2, 0.3, 0.2])
    ex = _fake_clock_and_explainer(keras, monkeypatch, durations)
    p = pl.probe(ex, np.zeros((3, 8, 8, 1), np.float32), batch=5, compiled=True)
    assert p.forward_s == pytest.approx(0.25 / 5) and p.cam_s == pytest.approx(0.25 / 5)
    assert p.backward_s == pytest.approx(0.25 / 5)  # never counted faster than the forward
    assert p.trace_s == pytest.approx(4.75)


def test_the_probe_times_one_trace_of_each_kind(keras, monkeypatch):
    """With a clock that makes the forward function's first call last 1.2 s, the input
    gradient's 3.2 s and GradCAM's 1.7 s, a fresh copy of the forward function's 0.7 s, every
    later call 0.2 s: their traces are 1, 3, 1.5 and 0.5 s, the least of the first three is
    ``trace_s``, the others are its multiples, and the copy's is the warm share."""
    durations = iter([1.2, 0.2, 0.2, 3.2, 0.2, 0.2, 1.7, 0.2, 0.2, 0.7, 0.2, *[0.2] * 10])
    ex = _fake_clock_and_explainer(keras, monkeypatch, durations)
    p = pl.probe(ex, np.zeros((3, 8, 8, 1), np.float32), batch=5, repeats=2, compiled=True,
                 min_seconds=0.0)
    assert p.trace_s == pytest.approx(1.0)
    assert p.trace_scale == pytest.approx({"forward": 1.0, "gradient": 3.0, "cam": 1.5})
    assert p.forward_s == pytest.approx(0.2 / 5)
    # A second trace of the forward function took 0.5 s: the model's later traces are
    # counted at half the first ones'.
    assert p.trace_warm == pytest.approx(0.5)
    plan = pl.make_plan(p, work(("gradcam",)), 600, 2**30, set(), 64)
    assert plan.as_dict()["trace_kinds_s"] == pytest.approx(
        {"forward": 0.5, "gradient": 1.5, "cam": 0.75})


def test_when_even_the_sample_images_fit_the_quality_table_and_search_shrink_last():
    """A VGG19-like case: after every other reduction the quality table of 10 images and a
    search of 512 test images for the receptive-field units are still over; the search was
    cut to 64 images earlier, and the last step is a quality table of 5 images."""
    w = dataclasses.replace(work(("gradcam", "smoothgrad")), rf_search=True)
    slow = pl.Probe("CPU", forward_s=0.3, backward_s=0.6, activation_bytes=10**6, batch=8)
    before = pl.estimate(slow, w)["layers"]
    plan = pl.make_plan(slow, w, 150.0, 2**30, set(), 64)
    assert "explain.receptive_images 512 → 64" in plan.reduced
    assert plan.reduced.index("explain.receptive_images 512 → 64") < plan.reduced.index(
        "explain.quality_images 20 → 10")
    assert plan.reduced[-2] == "explain.quality_images 10 → 5"
    assert plan.settings["quality_images"] == plan.settings["sanity_images"] == 5
    # The sanity check followed the quality table down, and said so each time.
    sanity = [r for r in plan.reductions if r.key == "explain.sanity_images"]
    assert [(r.asked, r.used) for r in sanity] == [(16, 10), (10, 5)]
    assert all(r.why == pl.AT_MOST_QUALITY for r in sanity)
    assert "explain.sanity_images 16 → 10 (at most explain.quality_images)" in plan.reduced
    # The Layers page then costs the search of 64 test images (and its traces, none here).
    assert plan.estimate_s["layers"] == pytest.approx(64 * 0.3, abs=0.05)
    assert before > 500 * 0.3
    # A key the user set is kept: the search stays at 512.
    w2 = dataclasses.replace(work(("gradcam", "smoothgrad")), rf_search=True)
    plan2 = pl.make_plan(slow, w2, 150.0, 2**30, {"explain.receptive_images"}, 64)
    assert plan2.settings["receptive_images"] == 512 and not any(
        "receptive_images" in r for r in plan2.reduced)


def test_the_over_budget_note_names_as_kept_only_the_set_keys_the_plan_kept():
    """explain.sanity_images follows explain.quality_images down even when the user set it:
    the note must not say it was kept (it said "set by you and kept: explain.sanity_images"
    beside 16 -> 5)."""
    w = dataclasses.replace(work(("gradcam", "smoothgrad")), rf_search=True)
    slow = pl.Probe("CPU", forward_s=0.3, backward_s=0.6, activation_bytes=10**6, batch=8)
    given = {"explain.sanity_images", "explain.receptive_images"}
    plan = pl.make_plan(slow, w, 150.0, 2**30, given, 64)
    assert plan.settings["sanity_images"] == 5 and plan.settings["receptive_images"] == 512
    [note] = plan.notes
    assert note.startswith("Over the budget")
    assert note.endswith("; set by you and kept: explain.receptive_images")


def test_the_late_plan_hands_the_rest_of_the_build_the_re_planned_settings():
    from types import SimpleNamespace

    from reportgen.config import Config
    from reportgen.pipeline.stages import LatePlan, with_settings

    plan = pl.make_plan(PROBE, work(), 400.0, 2**30, set(), 64)
    cfg = with_settings(Config(), plan.settings)
    late = LatePlan(SimpleNamespace(show=False), cfg, plan)
    early = {k: 2 * v for k, v in pl.estimate(PROBE, plan.work).items() if k in pl.EARLY_PARTS}
    run_cfg, quality = late(early)
    assert late.plan is not plan and late.plan.replan.ratio == 2.0 and plan.replan is None
    assert len(late.plan.reductions) > len(plan.reductions)
    assert run_cfg is late.cfg and quality == late.plan.quality_methods
    assert {k: getattr(run_cfg.explain, k) for k in late.plan.settings} == late.plan.settings
    # Without test images there is no plan: the config runs as it is.
    assert LatePlan(SimpleNamespace(show=False), cfg)(early) == (cfg, None)


def test_a_new_method_brings_its_own_two_reductions(monkeypatch):
    """A method with two reductions is one spec (and one registry line): the planner cuts
    both of its options, in its order, and can leave it out, without a change of its own."""
    from reportgen.explain.methods import Cost, MethodSpec, OptionCut, Reductions

    @dataclasses.dataclass
    class ToyOptions:
        probes: int = 64
        rounds: int = 32

    toy = MethodSpec(name="toy", label="Toy", description="", output="map", needs_conv=False,
                     options=ToyOptions, run=None,
                     cost=lambda o, shape: Cost(forward=o.probes * o.rounds),
                     reductions=Reductions((OptionCut("probes", 16), OptionCut("rounds", 2, 4)),
                                           optional=True))
    monkeypatch.setitem(REGISTRY, "toy", toy)
    w = dataclasses.replace(work(("gradcam",)), options={**work(("gradcam",)).options,
                                                          "toy": ToyOptions()},
                            quality_methods=("gradcam", "toy"))
    plan = pl.make_plan(PROBE, w, 60.0, 2**30, set(), 64)
    assert "explain.toy.probes 64 → 32" in plan.reduced
    assert "explain.toy.rounds 32 → 8" in plan.reduced
    assert plan.reduced.index("explain.toy.probes 64 → 32") < plan.reduced.index(
        "explain.toy.rounds 32 → 8")
    assert "Toy left out of the quality table (shown on the samples)" in plan.reduced
    assert plan.options["toy"] == ToyOptions(32, 8) and plan.quality_methods == ["gradcam"]
    # Set by the user: kept.
    kept = pl.make_plan(PROBE, w, 60.0, 2**30, {"explain.toy.probes"}, 64)
    assert kept.options["toy"].probes == 64 and "explain.toy.rounds 32 → 8" in kept.reduced


def test_every_declared_option_cut_can_fire_and_the_readme_names_each():
    # A cut's floor at or above the option's default never fires in a build (a value the user
    # set is kept as set), so the README would promise a reduction that cannot happen.
    import re
    from pathlib import Path

    from reportgen.config import Config

    defaults = configure(Config())
    declared = set()
    for m, spec in REGISTRY.items():
        for cut in spec.reductions.options:
            assert getattr(defaults[m], cut.option) > cut.floor, (m, cut)
            declared.add(f"{spec.label} {cut.option}")
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    listed = re.search(r"the options each method declares it may cut \(([^)]*)\)", readme)
    named = {n.strip() for n in listed.group(1).split(",")}
    assert named == {d.replace("_", " ") for d in declared}


def test_a_sanity_check_that_cannot_run_is_planned_as_0_images_and_said_why():
    w = work()
    # The budget holds all the work but the sanity check's 16 images (half a second more).
    budget = sum(pl.estimate(PROBE, w.with_settings(sanity_images=0)).values()) + 0.5
    assert pl.estimate(PROBE, w)["quality: sanity check"] > 0.5
    assert pl.make_plan(PROBE, w, budget, 2**30, set(), 64).reductions  # cut to fit, needlessly
    for given in (set(), {"explain.sanity_images"}):  # a value set cannot run either
        plan = pl.make_plan(PROBE, w, budget, 2**30, given, 64, no_sanity=pl.OPAQUE_HEAD)
        assert plan.reductions == (pl.Reduction("explain.sanity_images", 16, 0, pl.OPAQUE_HEAD),)
        assert plan.reduced == ["explain.sanity_images 16 → 0 (the model's head is inside a "
                                "SavedModel, whose weights cannot be randomized)"]
        assert plan.settings["sanity_images"] == 0 and plan.notes == () and plan.fits_as_asked
        assert plan.estimate_s["quality: sanity check"] == 0
        assert plan.estimate_full_s["quality: sanity check"] == 0  # never part of the work
    # Nothing asked, nothing said.
    none = w.with_settings(sanity_images=0)
    assert pl.make_plan(PROBE, none, budget, 2**30, set(), 64,
                        no_sanity=pl.OPAQUE_HEAD).reductions == ()
