"""The checks before any work, from the config and the file listing (no TensorFlow): the
method options, the paths, the class folders, and the input a model trained here takes."""

from __future__ import annotations

from pathlib import Path

from reportgen.config import Config, did_you_mean
from reportgen.data.folder import Dataset, check_listing, image_files, listed_files
from reportgen.data.metadata import read_metadata, read_table
from reportgen.errors import ConfigError
from reportgen.explain.methods import configure
from reportgen.model.sources import EarlyInput, source_for

#: The input of a model trained here (the name the stages used before the model sources).
TrainInput = EarlyInput


def check(cfg: Config) -> dict:
    """Check the explanation methods and their option tables before any work; return
    {method: options} (ConfigError naming the key otherwise)."""
    return configure(cfg)


def check_paths(cfg: Config, out: Path) -> None:
    """The output folder is never read as data: ``data.path`` may not be inside it, nor hold
    it (the next build would read the site's images); and the data is never the whole
    file system or a system folder."""
    if cfg.data.source == "shapes":
        return
    root = cfg.resolve(cfg.data.path).resolve()
    site = out.resolve()
    if root == Path(root.anchor) or any(root == Path(p) or Path(p) in root.parents
                                        for p in SYSTEM_FOLDERS):
        raise ConfigError(f"data.path: {root} is a system folder, not a folder of images")
    if root == site or site in root.parents or root in site.parents:
        raise ConfigError(f"data.path: {root} and the output folder --out {out} overlap; the "
                          "site is never read as data: put it outside the data folder")


#: Folders whose files are not data (data.path may not be, or be inside, one of them).
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev", "/run", "/boot", "/etc")


def absent_ok(cfg: Config) -> bool:
    """True when a class of ``data.classes`` may have no images: a loaded model is scored on
    the classes that have them (a model trained here needs every class)."""
    return source_for(cfg).absent_classes_ok


def check_data(cfg: Config) -> None:
    """Check the class folders against ``data.classes`` from the folder listing, and the form
    of the ``data.metadata`` file, before TensorFlow loads (DataError naming the key, folder
    or file)."""
    if cfg.data.source == "folder":
        check_listing(cfg.resolve(cfg.data.path), cfg.data.classes, absent_ok=absent_ok(cfg))
    if cfg.data.metadata:
        check_metadata(cfg)


def check_metadata(cfg: Config) -> None:
    """Check the ``data.metadata`` file against the image files listed in ``data.path``
    (nothing decoded; the demo's images do not exist yet: its form alone), so a wrong file is
    refused before TensorFlow loads; :func:`~reportgen.pipeline.stages.reading.metadata`
    matches it to the images read."""
    path = cfg.resolve(cfg.data.metadata)
    if cfg.data.source == "shapes":
        read_table(path)
        return
    root = cfg.resolve(cfg.data.path)
    if not root.is_dir():  # refused, naming data.path, when the data is read
        read_table(path)
        return
    files = listed_files(root) if cfg.data.source == "folder" else image_files(root, root, [])
    read_metadata(path, cfg.public(cfg.data.metadata),
                  [f.relative_to(root).as_posix() for f in files], [])


def train_input(cfg: Config) -> TrainInput:
    """The input the model takes as far as it is known before TensorFlow loads: what the
    model source decides from the files' headers (a model trained here:
    :meth:`~reportgen.model.sources.train.TrainSource.early_input`), else
    ``data.image_size`` in RGB (a given model's own input replaces it once loaded)."""
    size = cfg.data.image_size
    return source_for(cfg).early_input() or TrainInput((size, size, 3))


def explained_classes(cfg: Config, names: list[str]) -> list[int]:
    """The class indices of ``explain.classes`` (ConfigError naming an unknown one); a name
    with underscores for spaces, as keras ``decode_predictions`` writes them, is found too."""
    out = []
    for name in cfg.explain.classes:
        if name not in names and name.replace("_", " ") in names:
            name = name.replace("_", " ")  # keras decode_predictions spells "tiger_cat"
        if name not in names:
            close = did_you_mean(name, names)
            raise ConfigError(f"explain.classes: {name!r} is not a class of the model"
                              + (f"; did you mean {close!r}?" if close else
                                 f" ({len(names)} classes: {', '.join(names[:8])}"
                                 + (", ..." if len(names) > 8 else "") + ")"))
        out.append(names.index(name))
    return out


def operating_threshold(cfg: Config, ds: Dataset) -> float | None:
    """``evaluate.threshold`` when given and the model is binary (two classes) on labelled
    data; None otherwise: the highest probability predicts
    (:func:`reportgen.evaluate.predict_labels`)."""
    if "evaluate.threshold" not in cfg.given or len(ds.class_names) != 2 or not ds.labeled:
        return None
    return float(cfg.evaluate.threshold)
