"""Model: build, train, load, save and describe Keras classifiers.

Models built here take raw pixels (float32 in [0, 255]) and carry their own preprocessing as a
layer, so training, evaluation and every explanation see identically scaled inputs. Nothing here
mutates a model it was given.

The package imports Keras only when one of its names is first used (``from reportgen.model
import train``), so :mod:`reportgen.model.sources`, which the cache and the TensorFlow-free
stages ask, imports no TensorFlow. The modules: :mod:`~reportgen.model.preprocess`,
:mod:`~reportgen.model.architectures`, :mod:`~reportgen.model.training`,
:mod:`~reportgen.model.summary`, :mod:`~reportgen.model.predict`,
:mod:`~reportgen.model.files`, and one module per model source under
:mod:`reportgen.model.sources`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reportgen.lazy import lazy_names

if TYPE_CHECKING:  # the names below, for type checkers; imported on first use at run time
    from reportgen.model.architectures import (
        BACKBONES,
        STRIDE_FROM,
        build_model,
        small_cnn,
        transfer_model,
    )
    from reportgen.model.files import load_model, save_model
    from reportgen.model.predict import forward_function, predict_outputs
    from reportgen.model.preprocess import PREPROCESS_MODES, Preprocess, apply_preprocess
    from reportgen.model.sources.applications import (
        application_constructors,
        application_model,
        preprocess_mode_of,
    )
    from reportgen.model.sources.keras_file import load_keras_file
    from reportgen.model.sources.savedmodel import load_saved_model
    from reportgen.model.summary import (
        SCOPE_NAME,
        LayerRow,
        check_classifier_output,
        count_params,
        input_spec,
        output_count,
        summary_rows,
        weights_hash,
        with_runnable_names,
    )
    from reportgen.model.training import (
        CALIBRATION_IMAGES,
        EAGER_STEPS,
        calibrate_batchnorm,
        train,
    )

#: Each public name -> the module that defines it.
_HOMES = {
    "architectures": ("BACKBONES", "STRIDE_FROM", "build_model", "small_cnn", "transfer_model"),
    "files": ("load_model", "save_model"),
    "predict": ("forward_function", "predict_outputs"),
    "preprocess": ("PREPROCESS_MODES", "Preprocess", "apply_preprocess"),
    "sources.applications": ("application_constructors", "application_model",
                             "preprocess_mode_of"),
    "sources.keras_file": ("load_keras_file",),
    "sources.savedmodel": ("load_saved_model",),
    "summary": ("SCOPE_NAME", "LayerRow", "check_classifier_output", "count_params",
                "input_spec", "output_count", "summary_rows", "weights_hash",
                "with_runnable_names"),
    "training": ("CALIBRATION_IMAGES", "EAGER_STEPS", "calibrate_batchnorm", "train"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = ["BACKBONES", "CALIBRATION_IMAGES", "EAGER_STEPS", "LayerRow", "PREPROCESS_MODES",
           "Preprocess", "SCOPE_NAME", "STRIDE_FROM", "application_constructors",
           "application_model", "apply_preprocess", "build_model", "calibrate_batchnorm",
           "check_classifier_output", "count_params", "forward_function", "input_spec",
           "load_keras_file", "load_model", "load_saved_model", "output_count", "predict_outputs",
           "preprocess_mode_of", "save_model", "small_cnn", "summary_rows", "train",
           "transfer_model", "weights_hash", "with_runnable_names"]


#: A public name, importing its module (and so Keras) on first use.
__getattr__ = lazy_names(__name__, _HOME_OF)
