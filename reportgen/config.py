"""Typed configuration: TOML (stdlib tomllib) read into dataclasses, every key documented.

A config file has the sections ``[data]``, ``[model]``, ``[training]``, ``[explain]``,
``[evaluate]``, ``[report]`` and ``[card]`` (the model card's statements). Every key has a
default, so an empty file is a valid config (the built-in demo). Each field's
``metadata["doc"]`` is its one-line description; ``reportgen keys`` lists every listed key
(:func:`all_keys`) with its default and that description, then each explanation method's own
options. Errors name the key (``data.image_size``) and, for unknown keys, the closest valid
one.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from reportgen.errors import ConfigError


# long: one keyword per entry of the field's metadata, passed by name in every section
def option(default: Any, doc: str, *, choices: tuple[str, ...] | None = None,
           minimum: float | None = None, maximum: float | None = None, listed: bool = True,
           path: bool = False, names: bool = False):
    """A documented config field: its default, one-line ``doc``, allowed ``choices`` and
    bounds (checked on load). ``listed=False`` keeps it out of :func:`all_keys`; ``path=True``
    marks a file or folder (relative: to the config file's folder, or, given with ``--set``,
    to the working directory); ``names=True`` marks a list of names, where one bare string
    means a list of one (``methods = "gradcam"``). Used by the sections here and by the
    option dataclasses of the explanation methods."""
    meta = {"doc": doc, "choices": choices, "minimum": minimum, "maximum": maximum,
            "listed": listed, "path": path, "names": names}
    if isinstance(default, (list, dict)):
        return field(default_factory=partial(type(default), default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    source: str = option("shapes", 'Where images come from: "shapes" (built-in generated demo), '
                       '"folder" (class folders in data.path) or "images" (unlabeled photos '
                       "anywhere under data.path, explained with a given model; no accuracy).",
                       choices=("shapes", "folder", "images"))
    path: str = option("", "Image folder: root/<class>/* (split by data.split) or "
                     "root/{train,val,test}/<class>/* (used as given); for data.source = "
                     '"images", any images under it.', path=True)
    image_size: int = option(64, "Side in pixels images are resized to for training; a loaded "
                           "model's own input size wins.", minimum=8, maximum=1024)
    split: list = option([0.7, 0.15, 0.15], "Train, val and test fractions for a folder without "
                       "split subfolders; they must sum to 1.")
    split_seed: int = option(0, "Seed of the data: which images of a folder go to train, val "
                             "and test, and the images of the generated shapes demo. Models "
                             "built with the same data.split_seed (whatever their "
                             "training.seed) share a test set and can be compared.",
                             minimum=0, maximum=2**32 - 1)
    shapes_per_class: int = option(600, "Images per class generated for the shapes demo (the "
                                 "demo data only).", minimum=4, maximum=100000)
    cache_dir: str = option("", "Where the shapes demo and the build cache are written "
                          "(default: $XDG_CACHE_HOME/reportgen or ~/.cache/reportgen).",
                          path=True)
    classes: list = option([], "Class names in the order of the model's outputs, each "
                           "matched to a class folder of the same name; empty: the folders "
                           'sorted by name (for data.source = "images": the 1,000 ImageNet '
                           "classes, shipped with reportgen).", names=True)
    annotations: str = option("annotations.json", "File in data.path with object boxes, "
                            "{relative path: {\"box\": [x0, y0, x1, y1]}}; optional.")
    metadata: str = option("", "Optional CSV of per-image attributes: a 'file' column (the "
                           "path relative to data.path, as in predictions.csv) and any others "
                           "(camera, site, ...); each column's values (numbers with many "
                           "values: their quartiles) become slices on the Slices page.",
                           path=True)


@dataclass
class ModelConfig:
    source: str = option("train", '"train" builds and trains model.architecture; "load" loads '
                       'model.path; "applications" uses the keras.applications classifier '
                       "model.architecture as it is (its ImageNet head, model.weights, its own "
                       "preprocess_input and input size).",
                       choices=("train", "load", "applications"))
    path: str = option("", "Saved model to load (.keras or .h5, or a SavedModel folder) when "
                     'model.source is "load".', path=True)
    architecture: str = option("small_cnn", '"small_cnn" or a keras.applications name such as '
                             '"mobilenetv2", "vgg19", "inceptionv3", "resnet50" (for '
                             'model.source = "applications", any keras.applications '
                             'classifier: "efficientnetb0", "densenet121", ...).')
    input_size: int = option(0, 'Input side in pixels for model.source = "applications"; 0: '
                           "the architecture's own (224, or 299 for InceptionV3 and Xception).",
                           minimum=0, maximum=1024)
    weights: str = option("none", 'Backbone weights: "imagenet" (downloaded by Keras), "none" '
                        "(random init) or a weights file.", path=True)
    freeze_base: bool = option(True, "Freeze the backbone and train only the new head "
                             "(transfer learning).")
    preprocess: str = option("auto", 'Pixel scaling a loaded model expects: "auto" (none), '
                           '"none" (0..255), "scale01" (0..1), "tf" (-1..1), "torch", "caffe". '
                           'Only for model.source = "load": a model trained here carries its '
                           "own scaling.",
                           choices=("auto", "none", "scale01", "tf", "torch", "caffe"))
    safe_mode: bool = option(True, "Load with Keras safe mode (refuses Lambda layers with code); "
                           "set false only for models you trust.")
    output_index: int = option(0, "Which output of a multi-output model holds the class scores.",
                             minimum=0)


@dataclass
class TrainingConfig:
    epochs: int = option(12, "Maximum training epochs (early stopping on validation loss may "
                       "stop sooner).", minimum=1, maximum=10000)
    batch_size: int = option(32, "Training batch size.", minimum=1, maximum=65536)
    learning_rate: float = option(0.001, "Adam learning rate.", minimum=0.0)
    patience: int = option(3, "Early-stopping patience in epochs (validation loss).", minimum=0)
    min_epochs: int = option(3, "Early stopping neither stops before this epoch nor keeps the "
                             "weights of an earlier one (barely trained); the best validation "
                             "loss from this epoch on is kept.", minimum=1, maximum=10000)
    seed: int = option(0, "Seed of the weight initialisation, the shuffling and the "
                       "explanations' random choices; the data and its split have their own, "
                       "data.split_seed.", minimum=0, maximum=2**32 - 1)


@dataclass
class ExplainConfig:
    layer: str = option("", "Conv layer to explain; nested layers as outer/inner; empty picks the "
                      "last convolution's output after its activation (batch norm, activation, "
                      "residual add; never a pooling layer), larger than 1x1.")
    batch_size: int = option(64, "Batch size of the predictions and explanations when set; "
                             "not set, the build plans them from explain.memory_gb (used only "
                             "for a model the planner cannot walk).", minimum=1, maximum=65536)
    gallery_size: int = option(24, "Images per gallery section on each class page.",
                             minimum=0, maximum=100000)
    methods: list = option(["all"], 'Methods on the Methods page and in the quality table: '
                           '["all"] (every registered method) or a list of names; each '
                           "method's options are the table [explain.<method>].", names=True)
    classes: list = option([], "Classes whose GradCAM is also shown on the Methods page for "
                           "one test image per class; empty: every class when there are at "
                           "most 12, else the 12 most often predicted.", names=True)
    samples_per_class: int = option(2, "Test images per class shown across every method.",
                                  minimum=0, maximum=100)
    quality_images: int = option(100, "Test images (stratified) scored by deletion/insertion AUC, "
                               "pointing game, energy in box.", minimum=0)
    quality_steps: int = option(8, "Perturbation steps of the deletion and insertion curves.",
                              minimum=2, maximum=1000)
    budget: float = option(0.0, "Seconds of explanation work to plan for (0: 30 predict passes "
                           "of the test set as measured, within 180-900 s). The build "
                           "times the model first and reduces the extras (quality images and "
                           "steps, samples, masks, patterns, dreams) until the estimate fits; "
                           "keys you set are kept; the plan is in the report.", minimum=0.0)
    memory_gb: float = option(0.0, "Memory to plan batch sizes for, in GiB (0: half of what is "
                              "available, at most 2 GiB).", minimum=0.0)
    tie_orders: int = option(3, "Random orders of tied pixels (equal map values) that each "
                             "deletion/insertion AUC is averaged over (seeded by "
                             "training.seed); 1: one order. Maps without ties take one.",
                             minimum=1, maximum=20)
    sanity_images: int = option(16, "Test images compared before/after randomizing the head "
                              "(sanity check).", minimum=0)
    feature_map_channels: int = option(16, "Channels shown per layer on the Layers page.",
                                     minimum=1)
    pattern_layers: list = option([], "Layers whose filter patterns are drawn; empty: the first, "
                                "a middle and the last conv layer.", names=True)
    pattern_filters: int = option(8, "Filters per layer drawn as patterns.", minimum=0)
    pattern_steps: int = option(40, "Gradient-ascent steps per filter pattern.", minimum=1)
    receptive_images: int = option(512, "Test images searched for those units when their layer "
                                   "is not the explained one (the GradCAM pass finds the "
                                   "explained layer's over every test image).", minimum=1)
    receptive_units: int = option(6, "Most active last-layer units shown with their receptive "
                                "field.", minimum=0)
    dream_images: int = option(3, "Images given the deep-dream treatment (0 turns it off).",
                             minimum=0)
    dream_octaves: int = option(3, "Deep-dream octaves.", minimum=1, maximum=8)
    method_options: dict = option({}, "The per-method tables [explain.<method>] as written; "
                                  "checked against each method's options by "
                                  "reportgen.explain.methods.configure.", listed=False)


@dataclass
class EvaluateConfig:
    threshold: float = option(0.5, "Operating point of a binary model (one sigmoid output, or "
                              "two classes): an image is predicted as the second class when "
                              "its probability is >= this. Not given: the higher "
                              "probability wins (0.5). Only for binary models.",
                              minimum=0.0, maximum=1.0)


@dataclass
class ReportConfig:
    title: str = option("", "Title shown on every page; empty: made from the data and the "
                        'model ("photos: small_cnn trained here").')
    top_k: int = option(3, "Top-k accuracy is reported for this k when there are more classes.",
                      minimum=1)
    cache: bool = option(True, "Reuse the trained model, predictions and maps of an earlier build "
                       "with the same data and settings (stored under data.cache_dir).")
    include_model: bool = option(False, "Put the trained model, model.keras (its weights), "
                                 "into the site; off: the site, and what reportgen publish "
                                 "commits, hold no weights (publish also needs "
                                 "--include-model).")
    figure_formats: list = option(["png", "svg", "pdf"], 'Files written for every figure: '
                                '"png" (shown in the pages) plus "svg" and/or "pdf" for papers '
                                "(text kept as text).", names=True)
    data_audit: bool = option(True, "Audit the data (data.html): likely label errors on val and "
                              "test, exact and near duplicates within and across splits, "
                              "outliers of the test set and image-quality flags.")


@dataclass
class CardConfig:
    intended_use: str = option("", "Model card: what the model is for and who should use it "
                               "(plain text; a blank line starts a paragraph). Empty: the card "
                               'says "not stated".')
    out_of_scope_use: str = option("", "Model card: uses the model is not meant or not fit for.")
    limitations: str = option("", "Model card: known limitations, biases and failure cases "
                              "beyond what the report measures.")
    ethical_considerations: str = option("", "Model card: ethical considerations (sensitive "
                                         "data, people affected, risks).")
    authors: list = option([], "Model card: the authors' names (a list, or one name).",
                           names=True)
    license: str = option("", "Model card: the model's licence as an SPDX-like identifier "
                          '("mit", "apache-2.0", "cc-by-4.0"); one the Hugging Face Hub does '
                          'not list is written as license: other with its name. Empty: '
                          '"unknown".')
    citation: str = option("", "Model card: how to cite the model (BibTeX or plain text, "
                           "shown as written).")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    card: CardConfig = field(default_factory=CardConfig)
    #: Folder the config was read from; relative paths in the config are relative to it.
    base_dir: Path = field(default_factory=Path.cwd, repr=False, compare=False)
    #: Keys the user set (``explain.quality_images``, ``explain.smoothgrad.samples``): in the
    #: config file given with --config or with --set; the planner never changes them.
    given: frozenset = field(default_factory=frozenset, repr=False, compare=False)

    def resolve(self, path: str) -> Path:
        """Return ``path`` made absolute against the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def public(self, path: str | Path) -> str:
        """``path`` as a published report may show it, never an absolute local path: relative
        to the config file's folder when inside it, else the file or folder name alone
        ("" and names that are not paths, such as "imagenet", as they are)."""
        text = str(path)
        if text in NOT_PATHS:
            return text
        p = self.resolve(text)
        try:
            return p.relative_to(self.base_dir.resolve()).as_posix() or "."
        except ValueError:
            return p.name

    def weights(self) -> str:
        """``model.weights``: "none", "imagenet", or the weights file made absolute."""
        w = self.model.weights
        return w if w in NOT_PATHS else str(self.resolve(w))

    def to_dict(self) -> dict:
        """Return the config as plain data (for the report and the cache key)."""
        return {s: dataclasses.asdict(getattr(self, s)) for s in SECTIONS}


#: Keys that moved into a method's table: old key -> new key.
MOVED = {"explain.scorecam_channels": "explain.scorecam.channels",
         "explain.smoothgrad_samples": "explain.smoothgrad.samples",
         "explain.ig_steps": "explain.integrated_gradients.steps"}

SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
    "explain": ExplainConfig,
    "evaluate": EvaluateConfig,
    "report": ReportConfig,
    "card": CardConfig,
}

#: Keys holding a file or folder path (published relative to the config, or by name only).
PATH_KEYS = frozenset(f"{section}.{f.name}" for section, cls in SECTIONS.items()
                      for f in dataclasses.fields(cls) if f.metadata.get("path"))


def all_keys() -> list[tuple[str, Any, str]]:
    """Return (dotted key, default, description) for every key of the sections, in schema
    order (the methods' own keys: ``reportgen.explain.methods.option_keys``)."""
    return [row for section, cls in SECTIONS.items() for row in table_keys(section, cls)]


def table_keys(prefix: str, cls: type) -> list[tuple[str, Any, str]]:
    """(``prefix.key``, default, description) for every listed field of dataclass ``cls``."""
    inst = cls()
    return [(f"{prefix}.{f.name}", getattr(inst, f.name), f.metadata["doc"])
            for f in dataclasses.fields(cls) if f.metadata.get("listed", True)]


def did_you_mean(name: str, candidates: list[str]) -> str | None:
    """The candidate closest to ``name`` (a likely typo of it), or None."""
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return match[0] if match else None


def _closest(name: str, candidates: list[str]) -> str:
    match = did_you_mean(name, candidates)
    return f"; did you mean '{match}'?" if match else f"; valid: {', '.join(candidates)}"


def _type_name(tp: Any) -> str:
    return {int: "integer", float: "number", bool: "boolean", str: "string",
            list: "list"}.get(tp, str(tp))


def _coerce(key: str, value: Any, tp: Any, meta: Mapping[str, Any]) -> Any:
    """Check ``value`` against the field type and bounds; return it converted."""
    if tp is list and isinstance(value, str) and meta.get("names"):
        value = [value]
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (tp is str and isinstance(value, str))
        or (tp is list and isinstance(value, list))
    )
    if not ok:
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is float:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{key}: {value!r} is not a finite number")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, choices))}")
    lo, hi = meta.get("minimum"), meta.get("maximum")
    if lo is not None and value < lo:
        raise ConfigError(f"{key}: {value!r} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: {value!r} is above the maximum {hi}")
    return value


def _validate(cfg: Config) -> None:
    split = cfg.data.split
    if len(split) != 3 or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                  for x in split):
        raise ConfigError(f"data.split: expected three numbers [train, val, test], got {split!r}")
    if not all(math.isfinite(x) for x in split):
        raise ConfigError(f"data.split: expected finite numbers, got {split!r}")
    if any(x < 0 for x in split) or abs(sum(split) - 1.0) > 1e-6:
        raise ConfigError(f"data.split: fractions must be >= 0 and sum to 1, got {split!r}")
    if split[0] == 0 or split[2] == 0:
        raise ConfigError("data.split: the train and test fractions must be above 0")
    formats = cfg.report.figure_formats
    if (not formats or not all(isinstance(f, str) for f in formats) or formats[0] != "png"
            or not set(formats) <= {"png", "svg", "pdf"}):
        raise ConfigError('report.figure_formats: expected "png" first, then any of "svg", '
                          f'"pdf"; got {formats!r}')
    layers = cfg.explain.pattern_layers
    if not all(isinstance(p, str) and p.strip() for p in layers):
        raise ConfigError(f"explain.pattern_layers: expected layer names, got {layers!r}")
    if not all(isinstance(m, str) for m in cfg.explain.methods):
        raise ConfigError(f"explain.methods: expected a list of method names, got "
                          f"{cfg.explain.methods!r}")
    names = cfg.data.classes
    if not all(isinstance(c, str) and c.strip() for c in names) or len(set(names)) != len(names):
        raise ConfigError(f"data.classes: expected distinct non-empty names, got {names!r}")
    if cfg.data.source in ("folder", "images") and not cfg.data.path:
        raise ConfigError(f'data.path: required when data.source is "{cfg.data.source}"')
    if cfg.data.source == "images" and cfg.model.source == "train":
        raise ConfigError('data.source: "images" has no labels to train on; set model.source '
                          'to "load" (your model, with data.classes) or "applications" '
                          "(a keras.applications ImageNet classifier)")
    if cfg.model.source == "applications" and cfg.data.source != "images":
        raise ConfigError('model.source: "applications" explains unlabeled photos (data.source '
                          '= "images"); to learn your own classes, use model.source = "train" '
                          "with model.architecture (transfer learning)")
    _validate_card(cfg.card)
    explained = cfg.explain.classes
    if not all(isinstance(c, str) and c.strip() for c in explained):
        raise ConfigError(f"explain.classes: expected class names, got {explained!r}")
    if cfg.model.source == "load" and not cfg.model.path:
        raise ConfigError('model.path: required when model.source is "load"')
    if cfg.model.source != "load" and cfg.model.preprocess != "auto":
        raise ConfigError(f"model.preprocess: {cfg.model.preprocess!r} is for a loaded model "
                          f'(model.source = "load"); with model.source = '
                          f'"{cfg.model.source}" the model carries its own scaling: remove '
                          "model.preprocess")


#: What ``card.license`` may hold: an SPDX-like identifier (letters, digits, ".", "-", "+").
LICENSE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")


def _validate_card(card: CardConfig) -> None:
    if card.license and not LICENSE_ID.fullmatch(card.license):
        raise ConfigError(f"card.license: expected a licence identifier such as \"mit\", "
                          f"\"apache-2.0\" or \"cc-by-4.0\" (letters, digits, '.', '-', "
                          f"'+'), got {card.license!r}; describe other terms in "
                          "card.limitations")
    if not all(isinstance(a, str) and a.strip() for a in card.authors):
        raise ConfigError(f"card.authors: expected a list of names, got {card.authors!r}")


def read_table(prefix: str, values: dict, cls: type, target=None):
    """Check the TOML table ``values`` against dataclass ``cls`` (types, choices, bounds) and
    set its keys on ``target`` (a new ``cls()`` when None); return it. Errors name the key
    (``prefix.key``) and, for an unknown key, the closest valid one."""
    target = cls() if target is None else target
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("listed", True)}
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        key = f"{prefix}.{name}"
        if key in MOVED:
            raise ConfigError(f"{key}: moved to {MOVED[key]} (a key of the table "
                              f"[{MOVED[key].rsplit('.', 1)[0]}])")
        if name not in fields:
            raise ConfigError(f"unknown key {key}"
                              f"{_closest(key, [f'{prefix}.{n}' for n in fields])}")
        setattr(target, name, _coerce(key, value, hints[name], fields[name].metadata))
    return target


def from_dict(raw: dict, *, base_dir: Path | None = None) -> Config:
    """Build a validated Config from nested plain data (as tomllib returns it). Tables inside
    ``[explain]`` (``[explain.occlusion]``) are kept in ``explain.method_options`` for the
    explanation methods to check."""
    cfg = Config(base_dir=base_dir or Path.cwd())
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown section [{section}]{_closest(section, list(SECTIONS))}")
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a table [{section}], got {values!r}")
        if section == "explain":
            tables = {k: v for k, v in values.items() if isinstance(v, dict)}
            values = {k: v for k, v in values.items() if k not in tables}
            cfg.explain.method_options = {k: dict(v) for k, v in tables.items()}
        read_table(section, values, SECTIONS[section], getattr(cfg, section))
    _validate(cfg)
    return cfg


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``section.key=value`` (or ``explain.<method>.key=value``) into the key's parts and
    the value, read as TOML, else as a string."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    if not (len(parts) == 2 or len(parts) == 3 and parts[0] == "explain") or not all(parts):
        raise ConfigError(f"--set {key.strip()!r}: expected section.key=value "
                          "(or explain.<method>.key=value)")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return parts, value


def load(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a TOML config file and apply ``--set`` overrides. Without a file, the built-in
    demo config applies to the demo data (data.source = "shapes"); for other data the
    defaults do, so no demo setting (its title) reaches a user's report."""
    default = path is None
    path = default_config_path() if path is None else Path(path)
    if path.is_dir() or not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    given = set() if default else set(_dotted(raw))
    parsed = [parse_override(item) for item in overrides]
    if default and dict((".".join(k), v) for k, v in parsed).get(
            "data.source", raw.get("data", {}).get("source")) != "shapes":
        raw = {}  # the demo's settings (its title, its shapes) are for the demo data only
    for parts, value in parsed:
        given.add(".".join(parts))
        value = _from_working_dir(parts, value)
        table = raw
        for depth, part in enumerate(parts[:-1]):
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{'.'.join(parts[:depth + 1])}: expected a table")
        table[parts[-1]] = value
    cfg = from_dict(raw, base_dir=path.resolve().parent)
    cfg.given = frozenset(given)
    return cfg


def _dotted(table: dict, prefix: str = "") -> list[str]:
    """Every leaf key of nested ``table`` as ``a.b.c``."""
    out = []
    for k, v in table.items():
        out += _dotted(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return out


#: Values of path keys that are names, not paths.
NOT_PATHS = {"", "none", "imagenet"}


def _from_working_dir(parts: list[str], value: Any) -> Any:
    """A relative path given on the command line, made absolute against the working directory
    (paths written in a config file stay relative to that file)."""
    cls = SECTIONS.get(parts[0]) if len(parts) == 2 else None
    fields = {f.name: f for f in dataclasses.fields(cls)} if cls else {}
    f = fields.get(parts[-1])
    if f is None or not f.metadata.get("path") or not isinstance(value, str) \
            or value in NOT_PATHS or Path(value).expanduser().is_absolute():
        return value
    return str(Path.cwd() / value)


def default_config_path() -> Path:
    """Return the path of configs/demo.toml (source tree or installed package data)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "configs" / "demo.toml", here / "configs" / "demo.toml"):
        if candidate.exists():
            return candidate
    from importlib import resources
    return Path(str(resources.files("reportgen.configs").joinpath("demo.toml")))

