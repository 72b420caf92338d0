"""Explanations: pure computations on a Keras model and a batch of images, returning numpy.

Every function takes a Sequential or Functional Keras model (never modified) and a float32 batch
(N, H, W, C) preprocessed as the model expects (never modified), explains the class logits
(``targets=None``: the predicted class), and works in batches of ``batch_size``. An
:class:`Explainer` holds one model's graph and compiled functions for repeated calls; the
functions here are thin wrappers that make one per call. The methods are registered in
:mod:`reportgen.explain.methods` (one file each); the families share ``cam`` (class activation
maps), ``gradients`` (input attributions), ``features`` (what layers compute), ``receptive``
(receptive fields) and ``quality`` (how good a map is). Never imports matplotlib or jinja2.

Names are imported on first use, so ``reportgen.explain.methods`` and
``reportgen.explain.results`` load without TensorFlow.
"""

from __future__ import annotations

from importlib import import_module

_WHERE = {
    "grad_cam": "cam", "grad_cam_plus_plus": "cam", "layer_cam": "cam", "score_cam": "cam",
    "saliency": "gradients", "smooth_grad": "gradients", "integrated_gradients": "gradients",
    "guided_backprop": "gradients", "deconvnet": "gradients", "guided_grad_cam": "gradients",
    "has_relus": "gradients",
    "occlusion": "methods.occlusion", "rise": "methods.rise",
    "feature_maps": "features", "filter_patterns": "features", "deep_dream": "features",
    "learned_filters": "features", "receptive_field": "receptive",
    "ReceptiveField": "receptive", "ModelGraph": "graph", "Explainer": "explainer",
    "Explained": "results", "REGISTRY": "methods",
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
