"""The shard/merge contract (no TensorFlow).

``reportgen build --shard I/N`` (I in 1..N, 1-based like a Slurm array index) does the
per-image work for the images whose content hash (:func:`reportgen.data.content.content_hash`
of the decoded image) falls in shard I: the predictions of every split and the GradCAM pass
over the test images (maps at the layer's resolution, pointing game, channel peaks, the true
class's maps). It writes a shard folder: ``arrays.npz`` (probabilities as computed, maps float16)
and ``manifest.json`` (format, reportgen version, shard I/N, model weights hash, config hash
and the config, data hash, and per split the file list with its rows and content hashes).

``reportgen merge`` checks the set (:func:`check_set`), puts the arrays back in the data's
canonical order (:func:`merged`), and runs the ordinary report path on them; the parts whose
images are chosen over the whole data set (gallery maps, methods on the sample images, the
class grid, the quality table, the Layers page) run there, with the model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reportgen import __version__, scratch
from reportgen.config import Config, from_dict
from reportgen.errors import ShardError
from reportgen.explain.penultimate import Features
from reportgen.explain.results import CamPass

#: Version of the shard folder's layout; a merge refuses any other.
FORMAT = 2
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
CAM_FIELDS = CamPass._fields


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 1 <= I <= N (1-based); ValueError with the rule otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ValueError(f"{text!r}: expected I/N with I in 1..N (1-based), e.g. 2/8")
    return int(m.group(1)), int(m.group(2))


def config_hash(cfg: Config) -> str:
    """SHA-256 of the config's values and of the keys the user set (the planner keeps those)."""
    text = json.dumps({"config": cfg.to_dict(), "given": sorted(cfg.given)}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def config_payload(cfg: Config) -> dict:
    """The config as a manifest stores it: its values (the methods' option tables inside
    ``explain``, as a config file has them), the keys the user set, and its folder."""
    values = cfg.to_dict()
    values["explain"] = {**{k: v for k, v in values["explain"].items()
                            if k != "method_options"},
                         **values["explain"].get("method_options", {})}
    return {"values": values, "given": sorted(cfg.given), "base_dir": str(cfg.base_dir)}


def config_of(manifest: dict) -> Config:
    """The config a shard was built with (its paths relative to the folder it was read from)."""
    saved = manifest["config"]
    cfg = from_dict(saved["values"], base_dir=Path(saved["base_dir"]))
    return dataclasses.replace(cfg, given=frozenset(saved["given"]))


def write_shard(out: Path, manifest: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write a shard folder atomically (a temporary sibling renamed over ``out``); ``out`` is
    replaced only when missing, empty, or a shard folder (ShardError naming it otherwise)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())
                         and not (out / MANIFEST).is_file()):
        raise ShardError(f"--out {out}: exists and is not a shard folder; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = scratch.mkdtemp(f".{out.name}.shard-", out.parent)
    try:
        with open(tmp / ARRAYS, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub: names as flags
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_manifest(folder: Path) -> dict:
    """A shard folder's manifest (ShardError naming the folder when it is not one)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        raise ShardError(f"{folder}: not a shard folder (no readable {MANIFEST}; made by "
                         "reportgen build --shard I/N)") from None
    if manifest.get("format") != FORMAT:
        raise ShardError(f"{folder}: shard format {manifest.get('format')!r}, this reportgen "
                         f"{__version__} merges format {FORMAT}; rebuild the shard")
    return manifest


def check_set(shards: list[tuple[Path, dict]]) -> None:
    """Refuse (ShardError, one line naming what) a set that is not one complete build: shards
    of different counts, models, configurations or data, a shard given twice or missing, an
    image in two shards."""
    first_dir, first = shards[0]
    for key, what in (("count", "shard counts"), ("model_hash", "models"),
                      ("config_hash", "configurations"), ("data_hash", "data sets")):
        for folder, m in shards[1:]:
            a = first["shard"][1] if key == "count" else first[key]
            b = m["shard"][1] if key == "count" else m[key]
            if a != b:
                raise ShardError(f"shards of two {what}: {first_dir} and {folder} differ "
                                 f"({str(a)[:12]} vs {str(b)[:12]}); merge shards of one build")
    count = first["shard"][1]
    seen: dict[int, Path] = {}
    for folder, m in shards:
        i = m["shard"][0]
        if i in seen:
            raise ShardError(f"shard {i}/{count} given twice: {seen[i]} and {folder}")
        seen[i] = folder
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in seen]
    if missing:
        raise ShardError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                         f"missing (given {len(shards)} of {count})")
    _check_rows(shards)


def _check_rows(shards: list[tuple[Path, dict]]) -> None:
    """Every image of every split is in exactly one shard (ShardError naming one that is
    not)."""
    first = shards[0][1]
    for name, meta in first["splits"].items():
        owner: dict[int, Path] = {}
        for folder, m in shards:
            split = m["splits"][name]
            for row, path in zip(split["rows"], split["paths"], strict=True):
                if row in owner:
                    raise ShardError(f"{name} image {path} is in two shards: {owner[row]} "
                                     f"and {folder}")
                owner[row] = folder
        if len(owner) != meta["count"]:
            raise ShardError(f"{name}: {meta['count'] - len(owner)} image(s) in no shard")


@dataclass
class Merged:
    """A checked shard set in the data's canonical order: ``probs`` {split: (N, classes)
    as the shards computed them}, ``hashes`` and ``paths`` {split: N}, ``cam`` the test
    split's GradCAM pass (None when the model has no conv layer), ``manifest`` the first
    shard's."""

    probs: dict[str, np.ndarray]
    hashes: dict[str, list[str]]
    paths: dict[str, list[str]]
    cam: CamPass | None
    manifest: dict
    #: The penultimate-layer features as :class:`~reportgen.explain.penultimate.Features`.
    features: Features | None = None
    #: The methods' merged arrays (:func:`reportgen.explain.sharded.merge_groups`); None when
    #: the shards did not run them (unlabeled photos: the merge runs them with the model).
    methods: dict | None = None
    #: Per shard: {"shard": "I/N", "seconds", "notes", "failures"} of its methods' work.
    shard_methods: list = dataclasses.field(default_factory=list)

    @property
    def config(self) -> Config:
        return config_of(self.manifest)

    def cam_for(self, paths: list[str]) -> CamPass | None:
        """The test pass in the order of ``paths`` (the test split as the report orders it)."""
        if self.cam is None:
            return None
        where = {p: k for k, p in enumerate(self.paths["test"])}
        order = np.array([where[p] for p in paths], np.int64)
        return CamPass(*(a[order] for a in self.cam))


def load_set(folders: list[Path]) -> Merged:
    """Read, check (:func:`check_set`) and merge the shard folders."""
    shards = [(Path(f), read_manifest(Path(f))) for f in folders]
    check_set(shards)
    first = shards[0][1]
    if config_hash(config_of(first)) != first["config_hash"]:
        raise ShardError(f"{shards[0][0]}: its configuration does not match its config hash; "
                         "rebuild the shards with this reportgen")
    arrays = [(m, np.load(folder / ARRAYS)) for folder, m in shards]
    probs, hashes, paths = {}, {}, {}
    for name, meta in first["splits"].items():
        n = meta["count"]
        dtype = arrays[0][1][f"{name}.probs"].dtype
        probs[name] = np.zeros((n, first["classes"]), dtype)
        hashes[name], paths[name] = [""] * n, [""] * n
        for m, a in arrays:
            rows = m["splits"][name]["rows"]
            probs[name][rows] = a[f"{name}.probs"]
            for k, r in enumerate(rows):
                hashes[name][r] = m["splits"][name]["hashes"][k]
                paths[name][r] = m["splits"][name]["paths"][k]
    cam = _merged_cam(first["splits"]["test"]["count"], arrays) if first["cam"] else None
    methods, per_shard = _merged_methods(arrays)
    return Merged(probs, hashes, paths, cam, first, _merged_features(first, arrays), methods,
                  per_shard)


def _merged_methods(arrays: list) -> tuple[dict | None, list]:
    """The methods' arrays of every shard merged (:func:`reportgen.explain.sharded.
    merge_groups`), and each shard's record of them; (None, []) when the shards have none."""
    from reportgen.explain.sharded import merge_groups  # numpy only

    if any(m.get("methods") is None for m, _ in arrays):
        return None, []
    parts = [{k[2:]: a[k] for k in a.files if k.startswith("m.")} for _, a in arrays]
    per_shard = [{**{k: v for k, v in m["methods"].items() if k != "arrays"},
                  "shard": f"{m['shard'][0]}/{m['shard'][1]}"} for m, _ in arrays]
    return merge_groups(parts), per_shard


def _merged_features(first: dict, arrays: list) -> Features | None:
    """The penultimate-layer features of every split, each shard's rows put back in place."""
    meta = first.get("features")
    if meta is None:
        return None
    out = {}
    for name in meta["splits"]:
        parts = [(m["splits"][name]["rows"], a[f"{name}.features"]) for m, a in arrays]
        full = np.zeros((first["splits"][name]["count"],) + parts[0][1].shape[1:],
                        parts[0][1].dtype)
        for rows, part in parts:
            full[rows] = part
        out[name] = full
    return Features(out, meta["layer"], meta["description"], meta["missing"])


def _merged_cam(n: int, arrays: list) -> CamPass:
    """The test split's GradCAM pass, each shard's rows put back in place."""
    out = {}
    for field in CAM_FIELDS:
        parts = [(m["splits"]["test"]["rows"], a[f"test.{field}"]) for m, a in arrays]
        sample = next(p for _, p in parts)
        full = np.zeros((n,) + sample.shape[1:], sample.dtype)
        for rows, part in parts:
            full[rows] = part
        out[field] = full
    return CamPass(**out)
