"""One shard of a sharded build, on this machine (:mod:`.shards` has the contract): read the
data, load the model from its file, and do the per-image work for the shard's images."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from reportgen import __version__
from reportgen import progress as prog
from reportgen.config import Config
from reportgen.data.content import content_hashes, shard_of
from reportgen.data.folder import Split
from reportgen.errors import ShardError
from reportgen.pipeline import stages
from reportgen.pipeline.cache import BuildCache
from reportgen.pipeline.executors.shards import (FORMAT, config_hash, config_payload,
                                                 write_shard)


def refuse_training(cfg: Config) -> None:
    """A sharded build needs the model as a file: every shard must explain the same model."""
    if cfg.model.source != "load":
        raise ShardError(f'model.source = "{cfg.model.source}": a sharded build needs the model '
                         'as a file; train first (reportgen build), then shard with '
                         'model.source = "load" and model.path = <site>/model.keras')


def subset(split: Split, rows: list[int]) -> Split:
    """The images ``rows`` of ``split`` (a view of the same store: nothing is read)."""
    idx = np.asarray(rows, np.int64)
    images = split.images.view(idx) if hasattr(split.images, "view") and \
        not isinstance(split.images, np.ndarray) else split.images[idx]
    return dataclasses.replace(
        split, images=images, labels=split.labels[idx], paths=[split.paths[i] for i in rows],
        boxes=split.boxes[idx], sizes=None if split.sizes is None else split.sizes[idx])


def build_shard(cfg: Config, out: str | Path, shard: tuple[int, int], *,
                show_progress: bool = True) -> Path:
    """Do shard ``shard`` = (I, N), 1-based, of the build of ``cfg`` and write its folder
    ``out`` (:mod:`reportgen.pipeline.executors.shards`); return ``out``.

    Raises:
        ShardError: the model is trained here (``model.source`` other than "load").
        ReportgenError: as :func:`reportgen.pipeline.build` (config, data, model).
    """
    refuse_training(cfg)
    stages.check_data(cfg)
    options = stages.check(cfg)
    run = stages.Run(cfg, options, BuildCache(cfg), None, show=show_progress)  # type: ignore
    stages.start_tensorflow()
    from reportgen.explain.suite import explainer_for
    from reportgen.pipeline.stages import explaining, fit

    given = fit.given_model(run)
    data = stages.read_data(run, given.shape)
    fitted = fit.fit_model(run, given, data)
    index, count = shard
    hashes = {name: content_hashes(s.images) for name, s in data.ds.splits.items()}
    rows = {name: [k for k, h in enumerate(hs) if shard_of(h, count) == index - 1]
            for name, hs in hashes.items()}
    mine = dataclasses.replace(data, ds=dataclasses.replace(data.ds, splits={
        name: subset(s, rows[name]) for name, s in data.ds.splits.items()}))
    probs, features = explaining.predict(run, fitted, mine)
    arrays = {f"{name}.probs": p for name, p in probs.items()}  # as computed
    arrays.update({f"{name}.features": f for name, f in features.arrays.items()})
    ex = explainer_for(fitted.model, cfg, data.shape)  # one for both passes: traced once
    cam = explaining.shard_cam(run, ex, fitted, mine, probs["test"])
    if cam is not None:
        arrays.update({f"test.{k}": v for k, v in cam._asdict().items()})
    methods = explaining.shard_methods(run, ex, fitted, data, rows["test"], probs["test"],
                                       hashes["test"])
    if methods is not None:
        arrays.update({f"m.{k}": v for k, v in methods.pop("arrays").items()})
    manifest = {
        "format": FORMAT, "reportgen": __version__, "shard": [index, count],
        "model_hash": fitted.weights_hash, "config_hash": config_hash(cfg),
        "config": config_payload(cfg),
        "data_hash": data.hash, "classes": len(data.ds.class_names), "cam": cam is not None,
        "methods": methods,
        "features": {"layer": features.layer, "description": features.description,
                     "missing": features.missing, "splits": sorted(features.arrays)},
        "splits": {name: {"count": len(s), "rows": rows[name],
                          "paths": [s.paths[k] for k in rows[name]],
                          "hashes": [hashes[name][k] for k in rows[name]]}
                   for name, s in data.ds.splits.items()}}
    out = Path(out)
    write_shard(out, manifest, arrays)
    prog.say(f"Shard {index}/{count}: {sum(len(r) for r in rows.values())} images of "
             f"{sum(len(h) for h in hashes.values())} -> {out}", show_progress)
    return out
