"""A classifier trained by the build (``model.source = "train"``): the small CNN or a
keras.applications backbone with a new head (``model.architecture``), at an input decided from
the image files' headers before TensorFlow starts."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from reportgen.model.sources.base import EarlyInput, Given, SourceInfo, TrainingSource

#: Smallest input side a trained architecture takes: the small CNN's last conv layer is at 1/8
#: of its input (16 px: 2x2); keras.applications backbones need 32 px, a few more.
MIN_SIDE = {"small_cnn": 16, "inceptionv3": 75, "inceptionresnetv2": 75, "xception": 71}
#: Backbones not listed in :data:`MIN_SIDE` take at least this side.
MIN_BACKBONE_SIDE = 32


class TrainSource(TrainingSource):
    """``model.architecture`` built and trained with the ``[training]`` settings."""

    name = "train"

    def early_input(self) -> EarlyInput | None:
        """The input the model takes, from the image files' headers: ``data.image_size``
        when the user set it; not set, the data's own median shorter side rounded up to a
        multiple of 8, within the architecture's smallest input and ``data.image_size`` (64:
        never upsampled far beyond the data). One channel for the small CNN when every file
        is stored as grayscale (its filters and patterns are then gray too). None for data
        that is not a folder (the default size applies)."""
        from reportgen.data.folder import listed_files, source_info

        cfg = self.cfg
        size = cfg.data.image_size
        if cfg.data.source != "folder":
            return None
        info = source_info(listed_files(cfg.resolve(cfg.data.path)))
        if info is None:
            return None
        arch = cfg.model.architecture.lower().replace("_", "").replace("-", "")
        arch = "small_cnn" if arch == "smallcnn" else arch
        gray = info.all_gray and arch == "small_cnn"
        notes = []
        if "data.image_size" not in cfg.given:
            least = MIN_SIDE.get(arch, MIN_BACKBONE_SIDE)
            own = -(-info.side // 8) * 8
            chosen = max(least, min(size, own))
            if chosen != size:
                why = ("the smallest input the model takes" if chosen == least and own < least
                       else "their own size rounded up to a multiple of 8"
                       if own != info.side else "their own size")
                notes.append(f"data.image_size was not set: the images ({info.describe()}) "
                             f"were read at {chosen}×{chosen} px, {why}, rather than upsampled "
                             f"to {size} px; set data.image_size to choose another size.")
                size = chosen
        if gray:
            notes.append("Every image file is grayscale, so the small CNN was trained on one "
                         "channel (its filters, filter patterns and deep dreams are gray).")
        return EarlyInput((size, size, 1 if gray else 3), " ".join(notes) or None)

    def obtain(self, early: tuple[int, int, int] | None) -> Given:
        size = self.cfg.data.image_size
        return Given(None, early or (size, size, 3))

    def build(self, shape: tuple[int, int, int], n_classes: int) -> Any:
        from reportgen.model.architectures import build_model

        cfg = self.cfg
        return build_model(cfg.model.architecture, shape, n_classes, weights=cfg.weights(),
                           freeze_base=cfg.model.freeze_base, seed=cfg.training.seed)

    def fit(self, base: Any, train: tuple[np.ndarray, np.ndarray],
            val: tuple[np.ndarray, np.ndarray] | None,
            on_epoch: Callable[[int, dict], None]) -> tuple[Any, dict]:
        from reportgen.model.training import train as train_model

        return train_model(base, train, val, self.cfg.training, on_epoch)

    def describe(self) -> SourceInfo:
        return SourceInfo(self.name, True, "{model} trained here")
