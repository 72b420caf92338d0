"""What the report is made from: one :class:`ReportInputs` (plain data, no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from reportgen.config import Config
from reportgen.explain.results import Explained
from reportgen.model.sources import SourceInfo, source_for

if TYPE_CHECKING:  # annotations only: no import at run time
    from reportgen.data.folder import Dataset
    from reportgen.audit.issues import DataIssues
    from reportgen.explain.penultimate import Features
    from reportgen.evaluate.slices import SliceReport


@dataclass
class ModelInfo:
    """The model and the software that made the report (the Model page, metrics.json)."""

    version: str
    python: str
    tensorflow: str
    keras: str
    numpy: str
    model_hash: str
    data_hash: str
    #: (total, trainable) parameter counts.
    params: tuple[int, int]
    #: Model summary rows: {"name", "kind", "output_shape", "params"}.
    summary: list[dict]
    input_shape: list[int]
    model_name: str
    preprocess: str
    #: SHA-256 of the test split as files (paths, classes, bytes): ``reportgen compare``
    #: compares sites only when it is the same.
    test_hash: str = ""


@dataclass
class ReportInputs:
    """Everything a report is built from.

    Attributes:
        cfg: the build's config.
        ds: the data set (``reportgen.data.folder.Dataset``).
        probs: {split: (N, classes) float probabilities}.
        metrics: {split: metrics as ``reportgen.evaluate.split_metrics`` returns them}.
        history: training history {metric: per-epoch values} ({} for a loaded model).
        explained: the explanation results.
        info: the model and software.
        notes: remarks shown at the top of the overview.
        warnings: that the model does not work, and what to try
            (``reportgen.evaluate.model_warnings``): first on the overview, before the
            headline numbers, and first in metrics.json ``notes``.
        method_options: {method: its options as run, plain data} (the plan's; metrics.json).
        timings: wall seconds per build stage so far.
        features: the penultimate-layer features of every split
            (:class:`reportgen.explain.penultimate.Features`, plain numpy), None when not
            collected.
        data_issues: the data audit (:class:`reportgen.audit.issues.DataIssues`), None when
            ``report.data_audit`` is off or it failed.
        failures: parts of the build after the explanations that failed (the data audit).
        slices: accuracy by metadata slice and the weak slices found
            (``reportgen.evaluate.slices.SliceReport``); None for photos without labels.
        source: where the model came from (``model.source``: trained here, loaded, ...).
    """

    cfg: Config
    ds: Dataset
    probs: dict[str, np.ndarray]
    metrics: dict[str, dict]
    history: dict[str, list[float]]
    explained: Explained
    info: ModelInfo
    notes: list[str] = field(default_factory=list)
    method_options: dict[str, dict] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    features: Features | None = None
    data_issues: DataIssues | None = None
    failures: list = field(default_factory=list)
    slices: SliceReport | None = None
    #: Where the model came from; None: the source ``cfg`` names (:meth:`model_source`).
    source: SourceInfo | None = None

    def model_source(self) -> SourceInfo:
        """Where the model came from, as the report states it (plain data)."""
        return self.source or source_for(self.cfg).describe()
