"""Predicting and explaining the test set under a plan (imports TensorFlow): the
explanations, or both from the cache when an earlier build had the same model, data and
explain settings."""

from __future__ import annotations

import dataclasses
import time

from typing import Callable

import keras
import numpy as np

from reportgen import evaluate as ev
from reportgen import progress as prog
from reportgen.config import Config, ExplainConfig
from reportgen.data.content import content_hashes
from reportgen.errors import ShardError
from reportgen.explain import plan as pl
from reportgen.explain import suite
from reportgen.explain.common import one_blas_thread
from reportgen.explain.dataset.concepts import planned_images
from reportgen.explain.explainer import Explainer
from reportgen.explain.graph import ModelGraph
from reportgen.explain.methods import Shape
from reportgen.explain.penultimate import Features, predict_with_features
from reportgen.explain.results import Explained
from reportgen.guard import collecting, optional_part
from reportgen.pipeline.cache import ExplainBundle, key
from reportgen.pipeline.stages.checks import explained_classes, operating_threshold
from reportgen.pipeline.stages.fit import Fitted
from reportgen.pipeline.stages.reading import grouped
from reportgen.pipeline.stages.run import Data, Run
from reportgen.text import duration

#: Raw uint8 images (N, H, W, C) -> the model's float32 input.
Prep = Callable[[np.ndarray], np.ndarray]


def explain_key(run: Run, fitted: Fitted, data: Data) -> str:
    """The cache key of the predictions and explanations of ``fitted`` on ``data``."""
    cfg = run.cfg
    return key("explain", model=fitted.weights_hash, data=data.hash,
               explain=cfg.to_dict()["explain"], output_index=cfg.model.output_index,
               preprocess=fitted.preprocess, seed=cfg.training.seed,
               threshold=operating_threshold(cfg, data.ds))


def predict(run: Run, fitted: Fitted, data: Data) -> tuple[dict[str, np.ndarray], Features]:
    """Class probabilities {split: (N, classes)} of every split, in batches, and the
    penultimate-layer features (:mod:`reportgen.explain.penultimate`) of every split, from
    the same pass."""
    cfg, splits = run.cfg, data.ds.splits
    with run.timer.stage("predict"), \
            prog.bar("Predicting", sum(len(s) for s in splits.values()), run.show) as advance:
        raw, features = predict_with_features(
            fitted.model, {name: split.images for name, split in splits.items()}, data.shape,
            output_index=cfg.model.output_index, preprocess=fitted.prep, progress=advance,
            batch_size=predict_batch(cfg, fitted.model, data.shape))
    return {name: ev.to_probabilities(r, fitted.head) for name, r in raw.items()}, features


def predict_batch(cfg: Config, model: keras.Model, shape: tuple[int, int, int]) -> int:
    """The batch of the predictions: ``explain.batch_size`` when set, else what the memory
    budget holds for a forward pass (:func:`reportgen.explain.plan.memory_batch`)."""
    if "explain.batch_size" in cfg.given:
        return cfg.explain.batch_size
    try:
        act = pl.activation_bytes(ModelGraph(model, cfg.model.output_index, shape))
    except (TypeError, ValueError):  # a model the graph walk cannot follow
        return cfg.explain.batch_size
    return pl.memory_batch(act, pl.memory_budget(cfg.explain.memory_gb), pl.FORWARD_FACTOR)


def explain(run: Run, fitted: Fitted, data: Data, probs: dict[str, np.ndarray]) -> Explained:
    """GradCAM over the whole test set, every method with the quality table, the Layers page;
    the results carry the plan they ran to (as re-planned)."""
    test = data.ds.splits["test"]
    ex = suite.explainer_for(fitted.model, run.cfg, data.shape)
    with run.timer.stage("explain"), collecting() as failures, one_blas_thread():
        cfg, options, plan, late = guarded_plan(run, ex, data, fitted.prep)
        t0 = time.perf_counter()
        with prog.bar("Explaining (GradCAM)", len(test), run.show) as advance:
            done = run.merged.cam_for(test.paths) if run.merged is not None else None
            explained = suite.explain_test_set(
                ex, test, fitted.prep, probs["test"], cfg.explain.gallery_size, progress=advance,
                threshold=operating_threshold(run.cfg, data.ds), done=done)
        explained.seconds["test set"] = time.perf_counter() - t0
        if run.merged is not None:
            explained.notes.append(sharded_note(run.merged.manifest["shard"][1],
                                                run.merged.methods is not None))
        explained.notes += [f"Sanity check skipped: {r.why}." for r in
                            (plan.reductions if plan else ()) if r.why == pl.OPAQUE_HEAD]
        if run.merged is not None and run.merged.methods is not None:
            from_shards(run, ex, data, probs["test"], explained, failures)
        else:
            scored = plan.quality_methods if plan else list(options)
            weights = pl.progress_steps(plan, scored)
            with prog.bar("Methods and quality", prog.steps(weights), run.show) as advance:
                suite.explain_methods(ex, test, fitted.prep, probs["test"], cfg, options,
                                      explained, progress=prog.weighted(advance, weights),
                                      explained=explained_classes(cfg, data.ds.class_names),
                                      quality_methods=plan.quality_methods if plan else None,
                                      replan=late)
        cfg = late.cfg
        t0 = time.perf_counter()
        with prog.bar("Layers", 4, run.show) as advance:
            suite.explain_layers(ex, test, fitted.prep, cfg, explained, progress=advance)
        explained.seconds["layers"] = time.perf_counter() - t0
        dataset_wide(ex, test, fitted.prep, probs["test"], explained, run.show)
    explained.plan = late.plan
    explained.failures = failures
    return explained


def dataset_wide(ex: Explainer, test, prep: Prep, probs: np.ndarray, explained: Explained,
                 show: bool) -> None:
    """Strategies (clusters of the test set's GradCAM maps) and concepts (NMF of the
    explained layer) of every class, each an optional part."""
    from reportgen.explain.dataset import run as dataset
    from reportgen.explain.dataset import strategies

    with prog.bar("Strategies and concepts", 2, show) as advance:
        with optional_part("strategies", explained.layer or None):
            strategies.explain_strategies(explained, test, probs)
        advance(1)
        with optional_part("concepts", explained.layer or None):
            dataset.explain_concepts(ex, test, prep, probs, explained)
        advance(1)


def sharded_note(count: int, methods: bool) -> str:
    """What a merged build states of how it ran (``methods``: whether the shards ran the
    methods, or the merge did: photos without labels)."""
    ran = ("the GradCAM pass and the methods on its own test images" if methods else
           "the GradCAM pass on its own test images (the methods ran in the merge: their "
           "images are chosen by the predicted class of every image)")
    return (f"Sharded build: {count} shard{'s' if count > 1 else ''}, merged. Each shard ran "
            f"{ran} with every setting as configured (a sharded build has no time plan: "
            "explain.budget is not applied); the merge computed the tables and intervals "
            "from their arrays.")


def from_shards(run: Run, ex: Explainer, data: Data, probs: np.ndarray, explained: Explained,
                failures: list) -> None:
    """The methods' results of a merge from the shards' arrays
    (:func:`reportgen.explain.sharded.methods_from_arrays`), with the shards' notes, their
    seconds summed, and each shard's failures (naming the shard)."""
    from reportgen.explain import sharded
    from reportgen.guard import Failure

    merged, test = run.merged, data.ds.splits["test"]
    where = dict(zip(merged.paths["test"], merged.hashes["test"], strict=True))
    sharded.methods_from_arrays(
        ex, test, probs, run.cfg, run.options, explained, merged.methods,
        classes=explained_classes(run.cfg, data.ds.class_names) or None,
        hashes=[where[p] for p in test.paths])
    for shard in merged.shard_methods:
        explained.notes += [n for n in shard["notes"] if n not in explained.notes]
        for part, seconds in shard["seconds"].items():
            explained.seconds[part] = explained.seconds.get(part, 0.0) + seconds
        failures += [Failure(f["part"], f["layer"], f"shard {shard['shard']}: {f['error']}")
                     for f in shard["failures"]]


def shard_methods(run: Run, ex: Explainer, fitted: Fitted, data: Data, rows: list[int],
                  probs: np.ndarray, hashes: list[str]) -> dict | None:
    """The methods' per-image work (on the explainer ``ex``, the one of :func:`shard_cam`, so
    each compiled function is traced once) of a shard whose test images are ``rows`` of the whole
    data's test split (probabilities ``probs``, content hashes of every test image
    ``hashes``): {"arrays", "seconds", "notes", "failures"}
    (:func:`reportgen.explain.sharded.shard_methods`). None for unlabeled photos, whose
    images are chosen by the predicted class of every image: the merge runs them."""
    from reportgen.explain import sharded
    from reportgen.guard import collecting

    test = data.ds.splits["test"]
    if not data.ds.labeled or not len(test):
        return None
    mine = np.zeros(len(test), bool)
    mine[rows] = True
    full = np.zeros((len(test), probs.shape[1]), probs.dtype)
    full[rows] = probs
    with run.timer.stage("explain"), collecting() as failures, one_blas_thread():
        prog.say("Methods on the shard's sample and quality images", run.show)
        arrays, seconds, notes = sharded.shard_methods(
            ex, test, fitted.prep, full, run.cfg, run.options, mine,
            classes=explained_classes(run.cfg, data.ds.class_names) or None,
            threshold=operating_threshold(run.cfg, data.ds), hashes=hashes)
    return {"arrays": arrays, "seconds": seconds, "notes": notes,
            "failures": [f.as_dict() for f in failures]}


def guarded_plan(run: Run, ex: Explainer, data: Data, prep: Prep) -> tuple:
    """:func:`planned`, or, where probing the model fails (a failure noted like any other
    part's), the settings as configured with no plan. A merge of shards has no plan: its
    shards ran every setting as configured (no time budget), and so does the merge."""
    if run.merged is not None:
        return run.cfg, run.options, None, LatePlan(run, run.cfg)
    with optional_part("planning (timing the model)", ex.layer_or_none()):
        return planned(run, ex, data, prep)
    return run.cfg, run.options, None, LatePlan(run, run.cfg)


class LatePlan:
    """The re-plan of the quality table and the Layers page once the early parts ran
    (:func:`reportgen.explain.plan.replan`): called with the measured seconds of the parts,
    it says any new reduction and returns (the config, the quality table's methods);
    :attr:`cfg` is then the config the rest of the build runs with, :attr:`plan` the plan
    (None without test images)."""

    def __init__(self, run: Run, cfg: Config, plan: pl.Plan | None = None) -> None:
        self.run, self.cfg, self.plan = run, cfg, plan

    def __call__(self, seconds: dict[str, float]) -> tuple[Config, list[str] | None]:
        if self.plan is None:
            return self.cfg, None
        before = len(self.plan.reductions)
        self.plan = pl.replan(self.plan, seconds, set(self.cfg.given))
        for line in self.plan.reduced[before:]:
            prog.say(f"Plan: {line}", self.run.show)
        self.cfg = with_settings(self.cfg, self.plan.settings)
        return self.cfg, self.plan.quality_methods


def with_settings(cfg: Config, settings: dict) -> Config:
    """``cfg`` with the explain ``settings`` (a plan's, as run)."""
    return dataclasses.replace(cfg, explain=dataclasses.replace(cfg.explain, **settings))


#: The keys of [explain] the plan carries (the method tables are its options).
PLANNED_KEYS = tuple(f.name for f in dataclasses.fields(ExplainConfig)
                     if f.name != "method_options")


def planned(run: Run, ex: Explainer, data: Data, prep: Prep) -> tuple:
    """Probe the model, plan the work to explain.budget and the memory budget, and say what
    was reduced; return (the config with the planned explain settings, the planned method
    options, the :class:`~reportgen.explain.plan.Plan` (None without test images), the
    :class:`LatePlan` that re-plans the rest once the early parts ran). The explainer's
    batch sizes become the planned ones."""
    cfg, test, names = run.cfg, data.ds.splits["test"], data.ds.class_names
    e = cfg.explain
    if not len(test):
        return cfg, run.options, None, LatePlan(run, cfg)
    shown = suite.shown_classes(test.labels, len(names))
    try:
        channels = int(ex.graph.layer_shapes[ex.layer][-1])
    except ValueError:
        channels = None
    rf = suite.rf_search(ex, len(test), e.receptive_units)
    w = pl.Work(len(test), len(suite.stratified(test.labels, e.samples_per_class, len(names),
                                                shown)),
                len(shown), len(explained_classes(cfg, names) or shown),
                Shape(*data.shape[:2], channels), {k: getattr(e, k) for k in PLANNED_KEYS},
                run.options, tuple(run.options), rf, map_points=explorer_points(data),
                audit_s=audit_seconds(cfg, data), n_concepts=planned_images(test, len(names)))
    memory = pl.memory_budget(e.memory_gb)
    # Timed compiled, at the batch the work runs at: an eager timing (an upper bound) made
    # estimates several times too high, a batch of 32 those of work in batches of 128 too.
    batch = e.batch_size if "explain.batch_size" in cfg.given else \
        pl.memory_batch(pl.activation_bytes(ex.graph), memory)
    probe = pl.probe(ex, prep(test.images[:4]), min(batch, pl.MAX_BATCH), compiled=True)
    plan = pl.make_plan(probe, w, e.budget, memory, set(cfg.given), e.batch_size,
                        no_sanity=pl.OPAQUE_HEAD if ex.graph.opaque else None)
    ex.batch_size = plan.batch_size
    ex.batch_sizes = {**plan.batch_sizes, "curves": plan.forward_batch_size}
    for line in plan.reduced + list(plan.notes):
        prog.say(f"Plan: {line}", run.show)
    prog.say(f"Plan: explaining takes about {duration(sum(plan.estimate_s.values()))} "
             f"(explain.budget {duration(plan.budget_s)}"
             f"{', the default' if not e.budget else ''})", run.show)
    cfg = with_settings(cfg, plan.settings)
    return cfg, plan.options, plan, LatePlan(run, cfg, plan)


def shard_cam(run: Run, ex: Explainer, fitted: Fitted, data: Data, probs: np.ndarray
              ) -> suite.CamPass | None:
    """The GradCAM pass of the explainer ``ex`` over ``data``'s test images (a shard's, whose
    probabilities are ``probs``), or None when the model has no layer to explain at."""
    if ex.layer_or_none() is None:
        return None
    test = data.ds.splits["test"]
    with run.timer.stage("explain"), one_blas_thread(), \
            prog.bar("Explaining (GradCAM)", len(test), run.show) as advance:
        threshold = operating_threshold(run.cfg, data.ds)
        targets = suite.pass_targets(probs, threshold)
        return suite.cam_pass(ex, test, fitted.prep, targets, progress=advance)


def merged_probs(run: Run, fitted: Fitted, data: Data) -> dict[str, np.ndarray]:
    """The merged shards' probabilities, once the model and the images are checked to be
    those the shards were built from (ShardError naming the first that differs)."""
    merged = run.merged
    if merged.manifest["model_hash"] != fitted.weights_hash:
        raise ShardError(f"model.path: the model's weights differ from those the shards were "
                         f"built with ({merged.manifest['model_hash'][:12]}); rebuild them")
    for name, split in data.ds.splits.items():
        found = content_hashes(split.images)
        if found != merged.hashes[name] or list(split.paths) != merged.paths[name]:
            pairs = zip(split.paths, found, merged.paths[name], merged.hashes[name],
                        strict=False)
            bad = next((p for p, h, q, g in pairs if p != q or h != g),
                       f"{len(found)} vs {len(merged.hashes[name])} images")
            raise ShardError(f"data.path: the {name} images differ from the shards' ({bad}); "
                             "rebuild the shards")
    return merged.probs


def audit_seconds(cfg: Config, data: Data) -> float:
    """The data audit's estimated seconds (a part of the plan); 0 when it is off."""
    from reportgen.audit.issues import estimate_seconds

    return estimate_seconds(data.ds.splits) if cfg.report.data_audit else 0.0


def explorer_points(data: Data) -> int:
    """How many points the explorer's map will have (its layout is a part of the plan)."""
    from reportgen.report.explorer import map_sizes

    splits = data.ds.splits
    return sum(map_sizes(len(splits["test"]), len(splits["train"])).values())


def predict_and_explain(run: Run, fitted: Fitted, data: Data) -> ExplainBundle:
    """:func:`predict` and :func:`explain`, or both from the cache when an earlier build had
    the same model, data and explain settings. Merging shards (``run.merged``), the
    predictions, features and the test set's GradCAM pass are the shards'."""
    if run.merged is not None:
        probs = merged_probs(run, fitted, data)
        return ExplainBundle(probs, explain(run, fitted, grouped(data, probs), probs),
                             run.merged.features)
    entry = explain_key(run, fitted, data)
    hit = run.cache.get_explained(entry)
    if hit is not None:
        run.reused("the predictions and explanations", "model, data and explain settings",
                   "recomputes")
        return hit
    probs, features = predict(run, fitted, data)
    bundle = ExplainBundle(probs, explain(run, fitted, grouped(data, probs), probs), features)
    if not bundle.explained.failures:  # a failed part is tried again by the next build
        run.cache.put_explained(entry, bundle)
    return bundle
