"""The model stages: obtain the model from its source (load, build, train or reuse a trained
one from the cache), check it against the config, and describe it. Imports TensorFlow: the
build starts it (:func:`~reportgen.pipeline.stages.run.start_tensorflow`) first."""

from __future__ import annotations

import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from reportgen import __version__
from reportgen import model as mdl
from reportgen import progress as prog
from reportgen.config import Config
from reportgen.data.folder import Split, files_hash
from reportgen.data.store import Images
from reportgen.errors import ConfigError, ModelError
from reportgen.evaluate import kept_epoch
from reportgen.explain.graph import ModelGraph
from reportgen.model.sources import Given, TrainingSource
from reportgen.pipeline.cache import key
from reportgen.pipeline.stages.run import Data, Run
from reportgen.report.inputs import ModelInfo


@dataclass
class Fitted:
    """The model explained: loaded or trained, its history ({} when loaded), the cache key of
    its training, its preprocessing, and the hash of its weights."""

    model: keras.Model
    history: dict
    train_key: str | None
    preprocess: str
    weights_hash: str
    #: What the output holds (a key of ``reportgen.explain.graph.HEAD_KINDS``).
    head: str = "softmax"

    def prep(self, images: np.ndarray | Images) -> np.ndarray:
        """Raw uint8 images as the model's float32 input."""
        return preprocessed(images, self.preprocess)


def preprocessed(images: np.ndarray | Images, mode: str) -> np.ndarray:
    """Raw uint8 images as float32 model input under preprocessing ``mode``."""
    x = np.asarray(images).astype(np.float32)  # reads an Images view whole
    return np.asarray(mdl.apply_preprocess(x, mode), dtype=np.float32)


def given_model(run: Run) -> Given:
    """The model from its source (:meth:`~reportgen.model.sources.base.ModelSource.obtain`),
    its notes added to the report, its layer keys checked. A given model's input decides the
    image size; a model trained here (None until :func:`fit_model`) takes the input decided
    before TensorFlow started."""
    with run.timer.stage("load"):
        given = run.source.obtain(run.train_shape)
    run.notes += given.notes
    if given.model is not None:
        check_layer_keys(run.cfg, given.model, given.shape)
    return given


def check_layer_keys(cfg: Config, model: keras.Model, shape: tuple) -> None:
    """``explain.layer`` and every ``explain.pattern_layers`` entry checked against the model
    as soon as it exists (loaded, or built before training), so a typo ends the build at once
    with the valid names."""
    wanted = [("explain.layer", cfg.explain.layer)] if cfg.explain.layer else []
    wanted += [("explain.pattern_layers", p) for p in cfg.explain.pattern_layers]
    if not wanted:
        return
    try:
        graph = ModelGraph(model, cfg.model.output_index, shape)
    except (TypeError, ValueError):
        return  # not walkable: the explain stage says so
    for name, path in wanted:
        try:
            graph.layer(path)
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from None


def fit_model(run: Run, given: Given, data: Data) -> Fitted:
    """The model to explain: the given one, a model trained by an earlier build with the same
    data and settings (cache), or one trained now."""
    cfg, ds = run.cfg, data.ds
    preprocess = given.preprocess or ("none" if cfg.model.preprocess == "auto"
                                      else cfg.model.preprocess)
    n_classes = len(ds.class_names)
    train_key = None
    with run.timer.stage("train"):
        model, history = given.model, {}
        if model is None:
            settings = cfg.to_dict()
            train_key = key("train", data=data.hash, model=settings["model"],
                            training=settings["training"], shape=list(data.shape),
                            classes=ds.class_names, preprocess=preprocess,
                            weights_file=run.cache.files_key())
            model, history = _train_or_reuse(run, data, train_key, preprocess)
        if history:
            run.notes += _early_stopping_notes(history, cfg)
        head = _head(run, model, ds.class_names, data.shape)
        got = 2 if head.startswith("binary") else mdl.output_count(model, cfg.model.output_index)
        if got != n_classes and not ds.labeled:
            raise ConfigError(f"data.classes: the model predicts {got} classes but data.classes "
                              f"names {n_classes}" if cfg.data.classes else
                              f"data.classes: the model predicts {got} classes; name them in "
                              "data.classes, in the order of its outputs (without it, the "
                              "1,000 ImageNet classes are assumed)")
        if got != n_classes:
            raise ModelError(f"model.path: the model predicts {got} classes but the data has "
                             f"{n_classes} ({', '.join(ds.class_names)})")
        if run.source.calibrates():
            calibrate(run, model, data, preprocess)
    return Fitted(model, history, train_key, preprocess, mdl.weights_hash(model), head)


def _early_stopping_notes(history: dict, cfg: Config) -> list[str]:
    """What early stopping did: the epochs run, and the epoch whose weights were kept."""
    ran, kept = len(history.get("loss", [])), kept_epoch(history, cfg.training.min_epochs) + 1
    if ran == kept == cfg.training.epochs:
        return []
    monitor = "validation" if history.get("val_loss") else "training"
    stopped = " (early stopping)" if ran < cfg.training.epochs else ""
    return [f"Training ran {ran} of {cfg.training.epochs} epochs{stopped}; the weights of epoch "
            f"{kept}, the lowest {monitor} loss from epoch {cfg.training.min_epochs} "
            "(training.min_epochs) on, were kept."]


def calibrate(run: Run, model: keras.Model, data: Data, preprocess: str) -> None:
    """Set the BatchNorm statistics of a randomly initialized keras.applications model (built
    here) to those of the photos, so its outputs and maps are not degenerate (a network with
    random weights and initial statistics gives near-constant outputs and empty maps)."""
    test = data.ds.splits["test"]
    n = min(len(test), 64)
    if mdl.calibrate_batchnorm(model, preprocessed(test.images[:n], preprocess)):
        run.notes.append(f"With random weights (model.weights = \"none\"), the BatchNorm "
                         f"statistics were set from {n} of the photos; the predictions mean "
                         "nothing, the report shows the method, not the model.")


def _head(run: Run, model: keras.Model, names: list[str], shape: tuple) -> str:
    """The kind of the model's output, noted in the report where it is not a softmax."""
    try:
        graph = ModelGraph(model, run.cfg.model.output_index, shape)
    except (TypeError, ValueError):  # not walkable: read its outputs as probabilities/logits
        return "softmax"
    head, cut = graph.head, graph.opening()
    if cut is not None:
        run.notes.append(f"The SavedModel's serving graph was opened at {cut.tensor!r}, its "
                         "last convolution-like tensor, which the CAM methods explain"
                         + (f"; its final {cut.activation} was cut off, so explanations use "
                            "the logits." if cut.activation else "."))
    if head.startswith("binary") and len(names) == 2:
        run.notes.append(f"The model has one {'sigmoid' if head == 'binary' else 'logit'} "
                         f"output for two classes: p is the probability of class 1, "
                         f"{names[1]!r}, and 1 - p that of class 0, {names[0]!r}; class 0 is "
                         "explained by the negated logit.")
    elif head == "logits":
        run.notes.append("The model's last layer has no activation (logits): reportgen "
                         "computed the class probabilities as the softmax of the logits, "
                         "and explanations use the logits.")
    elif head == "probabilities":
        run.notes.append("The model's outputs are probabilities from a final layer reportgen "
                         "cannot see into (a SavedModel): explanations use the class "
                         "probabilities, not the logits.")
    elif head == "sigmoid":
        run.notes.append("The model's outputs are independent sigmoids: each class's "
                         "probability is its own sigmoid (they need not sum to 1), the "
                         "predicted class is the highest, and the loss is -log p(true class).")
    return head


def _train_or_reuse(run: Run, data: Data, train_key: str, preprocess: str) -> tuple:
    """(model, history): a model trained by an earlier build with the same key, or one
    that the source builds and trains now (stored in the cache)."""
    cfg, ds, source = run.cfg, data.ds, run.source
    assert isinstance(source, TrainingSource)  # only a training source gives no model
    hit = run.cache.get_trained(train_key, mdl.load_model)
    if hit is not None:
        run.reused("the trained model", "data and settings", "retrains")
        return hit
    base = source.build(data.shape, len(ds.class_names))
    check_layer_keys(cfg, base, data.shape)

    def xy(split: Split) -> tuple[np.ndarray, np.ndarray]:
        return preprocessed(split.images, preprocess), split.labels

    tr, va = ds.splits["train"], ds.splits["val"]
    with prog.bar("Training (epochs)", cfg.training.epochs, run.show) as advance:
        model, history = source.fit(base, xy(tr), xy(va) if len(va) else None,
                                    lambda e, logs: advance(1))
    run.cache.put_trained(train_key, lambda path: mdl.save_model(model, path), history)
    return model, history


def describe(fitted: Fitted, data: Data) -> ModelInfo:
    """The Model page's :class:`~reportgen.report.inputs.ModelInfo`."""
    model, ds = fitted.model, data.ds
    return ModelInfo(
        version=__version__, python=platform.python_version(), tensorflow=tf.__version__,
        keras=keras.__version__, numpy=np.__version__, model_hash=fitted.weights_hash,
        data_hash=data.hash, params=mdl.count_params(model),
        summary=[vars(r) for r in mdl.summary_rows(model)], input_shape=list(data.shape),
        model_name=model.name, preprocess=fitted.preprocess,
        test_hash=files_hash(ds.root, ds.splits["test"], ds.class_names))


def model_file_job(run: Run, fitted: Fitted) -> Callable[[Path], object] | None:
    """How the site gets ``model.keras`` for a model trained here: a copy of the cached one,
    or saved anew without a cache; None for a given model."""
    if fitted.train_key is None:
        return None
    cached = run.cache.model_file(fitted.train_key)
    if cached is not None:
        return lambda path: shutil.copyfile(cached, path)
    return lambda path: mdl.save_model(fitted.model, path)
