"""Explanations: pure computations on a Keras model and a batch of images, returning numpy.

Every function takes a Sequential or Functional Keras model (never modified) and a float32 batch
(N, H, W, C) preprocessed as the model expects (never modified), explains the class logits
(``targets=None``: the predicted class), and works in batches of ``batch_size``. One module per
method family: ``cam`` (class activation maps), ``gradients`` (input attributions), ``features``
(what layers compute), ``receptive`` (receptive fields), ``quality`` (how good a map is).
Never imports matplotlib or jinja2.
"""

from reportgen.explain.cam import grad_cam, grad_cam_plus_plus, layer_cam, score_cam
from reportgen.explain.features import deep_dream, feature_maps, filter_patterns, learned_filters
from reportgen.explain.gradients import (deconvnet, guided_backprop, guided_grad_cam,
                                         integrated_gradients, saliency, smooth_grad)
from reportgen.explain.graph import ModelGraph, graph_for
from reportgen.explain.receptive import ReceptiveField, receptive_field
from reportgen.explain.suite import Explained, explain_test_set

__all__ = ["grad_cam", "grad_cam_plus_plus", "layer_cam", "score_cam", "saliency", "smooth_grad",
           "integrated_gradients", "guided_backprop", "deconvnet", "guided_grad_cam",
           "feature_maps", "filter_patterns", "deep_dream", "learned_filters", "receptive_field",
           "ReceptiveField", "ModelGraph", "graph_for", "Explained", "explain_test_set"]
