"""The stages of a build, each a function of typed inputs returning a dataclass.

``reportgen.pipeline.build`` runs them in order: check the settings, read the data, get the
model (from its source: load, build or train), predict, evaluate, explain, draw, write. The
modules without TensorFlow, imported here: :mod:`.run` (what the stages share),
:mod:`.checks` (before any work), :mod:`.reading` (the data and the cached rebuild) and
:mod:`.writing` (metrics, warnings, the site). The modules that import TensorFlow at module
level, :mod:`.fit` (the model) and :mod:`.explaining` (predictions and explanations), load
when one of their names is first used here, or when imported; the build starts TensorFlow
(:func:`start_tensorflow`) before. So a cached rebuild (:func:`cached_report`) runs without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reportgen.lazy import lazy_names

from reportgen.pipeline.stages.checks import (
    SYSTEM_FOLDERS,
    TrainInput,
    absent_ok,
    check,
    check_data,
    check_metadata,
    check_paths,
    explained_classes,
    operating_threshold,
    train_input,
)
from reportgen.pipeline.stages.reading import (
    absent_note,
    cached_report,
    grouped,
    metadata,
    read_data,
    unlabeled_names,
)
from reportgen.pipeline.stages.run import Data, Run, Timer, start_tensorflow
from reportgen.pipeline.stages.writing import (
    add_test_curves,
    audit,
    binary_threshold,
    evaluate,
    slices,
    warn,
    write,
)

if TYPE_CHECKING:  # the TensorFlow stages, for type checkers; imported on first use
    from reportgen.pipeline.stages.explaining import (
        PLANNED_KEYS,
        LatePlan,
        explain,
        explain_key,
        guarded_plan,
        planned,
        predict,
        predict_and_explain,
        predict_batch,
        with_settings,
    )
    from reportgen.pipeline.stages.fit import (
        Fitted,
        Given,
        calibrate,
        check_layer_keys,
        describe,
        fit_model,
        given_model,
        model_file_job,
        preprocessed,
    )

#: The TensorFlow stages' names -> their module.
_LATER = {
    **dict.fromkeys(("PLANNED_KEYS", "LatePlan", "explain", "explain_key", "guarded_plan",
                     "planned", "predict", "predict_and_explain", "predict_batch",
                     "with_settings"), "explaining"),
    **dict.fromkeys(("Fitted", "Given", "calibrate", "check_layer_keys", "describe",
                     "fit_model", "given_model", "model_file_job", "preprocessed",
                     "_early_stopping_notes"), "fit"),
}

__all__ = [
    "Data", "Fitted", "Given", "LatePlan", "PLANNED_KEYS", "Run", "SYSTEM_FOLDERS", "Timer",
    "TrainInput", "absent_note", "absent_ok", "add_test_curves", "audit", "binary_threshold",
    "cached_report", "calibrate", "check", "check_data", "check_layer_keys", "check_metadata",
    "check_paths", "describe", "evaluate", "explain", "explain_key", "explained_classes",
    "fit_model", "given_model", "grouped", "guarded_plan", "metadata", "model_file_job",
    "operating_threshold", "planned", "predict", "predict_and_explain", "predict_batch",
    "preprocessed", "read_data", "slices",
    "start_tensorflow", "train_input", "unlabeled_names", "warn", "with_settings", "write",
]


#: A name of a TensorFlow stage module, importing it (and TensorFlow) on first use.
__getattr__ = lazy_names(__name__, _LATER)
