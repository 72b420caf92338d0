"""Typed configuration: TOML (stdlib tomllib) read into dataclasses, every key documented.

A config file has the sections ``[data]``, ``[model]``, ``[training]``, ``[explain]`` and
``[report]``. Every key has a default, so an empty file is a valid config (the built-in demo).
Each field's ``metadata["doc"]`` is its one-line description; ``reportgen config-keys`` and the
README list them. Errors name the key (``data.image_size``) and, for unknown keys, the closest
valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportgen.errors import ConfigError


def _key(default: Any, doc: str, *, choices: tuple[str, ...] | None = None,
         minimum: float | None = None, maximum: float | None = None):
    meta = {"doc": doc, "choices": choices, "minimum": minimum, "maximum": maximum}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    source: str = _key("shapes", 'Where images come from: "shapes" (built-in generated demo) or '
                       '"folder" (data.path).', choices=("shapes", "folder"))
    path: str = _key("", "Image folder: root/<class>/* (split by data.split) or "
                     "root/{train,val,test}/<class>/* (used as given).")
    image_size: int = _key(64, "Side in pixels images are resized to for training; a loaded "
                           "model's own input size wins.", minimum=8, maximum=1024)
    split: list = _key([0.7, 0.15, 0.15], "Train, val and test fractions for a folder without "
                       "split subfolders; they must sum to 1.")
    shapes_per_class: int = _key(600, "Images per class generated for the shapes demo.",
                                 minimum=4, maximum=100000)
    cache_dir: str = _key("", "Where the shapes demo is written (default: "
                          "$XDG_CACHE_HOME/reportgen or ~/.cache/reportgen).")
    annotations: str = _key("annotations.json", "File in data.path with object boxes, "
                            "{relative path: {\"box\": [x0, y0, x1, y1]}}; optional.")


@dataclass
class ModelConfig:
    source: str = _key("train", '"train" builds and trains model.architecture; "load" loads '
                       "model.path.", choices=("train", "load"))
    path: str = _key("", "Saved model to load (.keras or .h5) when model.source is \"load\".")
    architecture: str = _key("small_cnn", '"small_cnn" or a keras.applications name such as '
                             '"mobilenetv2", "vgg19", "inceptionv3", "resnet50".')
    weights: str = _key("none", 'Backbone weights: "imagenet" (downloaded by Keras), "none" '
                        "(random init) or a weights file.")
    freeze_base: bool = _key(True, "Freeze the backbone and train only the new head "
                             "(transfer learning).")
    preprocess: str = _key("auto", 'Pixel scaling a loaded model expects: "auto" (none), '
                           '"none" (0..255), "scale01" (0..1), "tf" (-1..1), "torch", "caffe".',
                           choices=("auto", "none", "scale01", "tf", "torch", "caffe"))
    safe_mode: bool = _key(True, "Load with Keras safe mode (refuses Lambda layers with code); "
                           "set false only for models you trust.")
    output_index: int = _key(0, "Which output of a multi-output model holds the class scores.",
                             minimum=0)


@dataclass
class TrainingConfig:
    epochs: int = _key(12, "Maximum training epochs (early stopping on validation loss may "
                       "stop sooner).", minimum=1, maximum=10000)
    batch_size: int = _key(32, "Training batch size.", minimum=1, maximum=65536)
    learning_rate: float = _key(0.001, "Adam learning rate.", minimum=0.0)
    patience: int = _key(3, "Early-stopping patience in epochs (validation loss).", minimum=0)
    seed: int = _key(0, "Seed for data generation, splits, weight init and shuffling.",
                     minimum=0)


@dataclass
class ExplainConfig:
    layer: str = _key("", "Conv layer to explain; nested layers as outer/inner; empty picks the "
                      "last 4-D layer larger than 1x1.")
    batch_size: int = _key(64, "Batch size for explanations.", minimum=1, maximum=65536)
    gallery_size: int = _key(24, "Images per gallery section on each class page.",
                             minimum=0, maximum=100000)
    methods: list = _key(list(("gradcam", "gradcam++", "layercam", "scorecam", "saliency",
                               "smoothgrad", "integrated_gradients", "guided_backprop",
                               "deconvnet", "guided_gradcam")),
                         "Methods on the Methods page and in the quality table.")
    samples_per_class: int = _key(2, "Test images per class shown across every method.",
                                  minimum=0, maximum=100)
    quality_images: int = _key(100, "Test images (stratified) scored by deletion/insertion AUC, "
                               "pointing game, energy in box.", minimum=0)
    quality_steps: int = _key(8, "Perturbation steps of the deletion and insertion curves.",
                              minimum=2, maximum=1000)
    sanity_images: int = _key(16, "Test images compared before/after randomizing the head "
                              "(sanity check).", minimum=0)
    scorecam_channels: int = _key(16, "ScoreCAM channel cap (most active first); bounds its "
                                  "cost.", minimum=1)
    smoothgrad_samples: int = _key(10, "Noisy copies averaged by SmoothGrad.", minimum=1)
    ig_steps: int = _key(16, "Integration steps of Integrated Gradients.", minimum=1)
    feature_map_channels: int = _key(16, "Channels shown per layer on the Layers page.",
                                     minimum=1)
    pattern_layers: list = _key([], "Layers whose filter patterns are drawn; empty: the first, "
                                "a middle and the last conv layer.")
    pattern_filters: int = _key(8, "Filters per layer drawn as patterns.", minimum=0)
    pattern_steps: int = _key(40, "Gradient-ascent steps per filter pattern.", minimum=1)
    receptive_units: int = _key(6, "Most active last-layer units shown with their receptive "
                                "field.", minimum=0)
    dream_images: int = _key(3, "Images given the deep-dream treatment (0 turns it off).",
                             minimum=0)
    dream_octaves: int = _key(3, "Deep-dream octaves.", minimum=1, maximum=8)


@dataclass
class ReportConfig:
    title: str = _key("reportgen report", "Title shown on every page.")
    top_k: int = _key(3, "Top-k accuracy is reported for this k when there are more classes.",
                      minimum=1)
    cache: bool = _key(True, "Reuse the trained model, predictions and maps of an earlier build "
                       "with the same data and settings (stored under data.cache_dir).")
    figure_formats: list = _key(["png", "svg"], 'Files written for every figure: "png" '
                                '(shown in the pages) plus "svg" and/or "pdf" for papers.')


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    #: Folder the config was read from; relative paths in the config are relative to it.
    base_dir: Path = field(default_factory=Path.cwd, repr=False, compare=False)

    def resolve(self, path: str) -> Path:
        """Return ``path`` made absolute against the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def to_dict(self) -> dict:
        """Return the config as plain data (for the report and the cache key)."""
        return {s: dataclasses.asdict(getattr(self, s)) for s in SECTIONS}


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
    "explain": ExplainConfig,
    "report": ReportConfig,
}


def all_keys() -> list[tuple[str, Any, str]]:
    """Return (dotted key, default, description) for every key, in schema order."""
    out = []
    for section, cls in SECTIONS.items():
        inst = cls()
        for f in dataclasses.fields(cls):
            out.append((f"{section}.{f.name}", getattr(inst, f.name), f.metadata["doc"]))
    return out


def _closest(name: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else f"; valid: {', '.join(candidates)}"


def _type_name(tp: Any) -> str:
    return {int: "integer", float: "number", bool: "boolean", str: "string",
            list: "list"}.get(tp, str(tp))


def _coerce(key: str, value: Any, tp: Any, meta: dict) -> Any:
    """Check ``value`` against the field type and bounds; return it converted."""
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
    if any(x < 0 for x in split) or abs(sum(split) - 1.0) > 1e-6:
        raise ConfigError(f"data.split: fractions must be >= 0 and sum to 1, got {split!r}")
    if split[0] == 0 or split[2] == 0:
        raise ConfigError("data.split: the train and test fractions must be above 0")
    formats = cfg.report.figure_formats
    if not formats or formats[0] != "png" or not set(formats) <= {"png", "svg", "pdf"}:
        raise ConfigError('report.figure_formats: expected "png" first, then any of "svg", '
                          f'"pdf"; got {formats!r}')
    from reportgen.methods import METHOD_NAMES
    for m in cfg.explain.methods:
        if m not in METHOD_NAMES:
            raise ConfigError(f"explain.methods: unknown method {m!r}"
                              f"{_closest(m, list(METHOD_NAMES))}")
    if cfg.data.source == "folder" and not cfg.data.path:
        raise ConfigError('data.path: required when data.source is "folder"')
    if cfg.model.source == "load" and not cfg.model.path:
        raise ConfigError('model.path: required when model.source is "load"')


def from_dict(raw: dict, *, base_dir: Path | None = None) -> Config:
    """Build a validated Config from nested plain data (as tomllib returns it)."""
    cfg = Config(base_dir=base_dir or Path.cwd())
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown section [{section}]{_closest(section, list(SECTIONS))}")
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a table [{section}], got {values!r}")
        cls = SECTIONS[section]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        target = getattr(cfg, section)
        for name, value in values.items():
            if name not in fields:
                valid = [f"{section}.{n}" for n in fields]
                raise ConfigError(f"unknown key {section}.{name}"
                                  f"{_closest(f'{section}.{name}', valid)}")
            setattr(target, name,
                    _coerce(f"{section}.{name}", value, hints[name], fields[name].metadata))
    _validate(cfg)
    return cfg


def parse_override(item: str) -> tuple[str, str, Any]:
    """Split ``section.key=value`` into its parts; the value is read as TOML, else a string."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    key, text = item.split("=", 1)
    key = key.strip()
    if key.count(".") != 1:
        raise ConfigError(f"--set {key!r}: expected section.key=value")
    section, name = key.split(".")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return section, name, value


def load(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a TOML config file (the built-in demo config when None) and apply ``--set`` overrides."""
    if path is None:
        path = default_config_path()
    path = Path(path)
    if path.is_dir() or not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    for item in overrides:
        section, name, value = parse_override(item)
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ConfigError(f"{section}: expected a table [{section}]")
        raw[section][name] = value
    return from_dict(raw, base_dir=path.resolve().parent)


def default_config_path() -> Path:
    """Return the path of configs/demo.toml (source tree or installed package data)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "configs" / "demo.toml", here / "configs" / "demo.toml"):
        if candidate.exists():
            return candidate
    from importlib import resources
    return Path(str(resources.files("reportgen.configs").joinpath("demo.toml")))

