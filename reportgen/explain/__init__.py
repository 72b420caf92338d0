"""Explanations: pure computations on a Keras model and a batch of images, returning numpy.

Every function takes a Sequential or Functional Keras model (never modified) and a float32 batch
(N, H, W, C) preprocessed as the model expects (never modified), explains the class logits
(``targets=None``: the predicted class), and works in batches of ``batch_size``. Never imports
matplotlib or jinja2.
"""

from reportgen.explain.cam import grad_cam, grad_cam_plus_plus, layer_cam, score_cam
from reportgen.explain.graph import ModelGraph, graph_for
from reportgen.explain.suite import Explained, explain_test_set

__all__ = ["grad_cam", "grad_cam_plus_plus", "layer_cam", "score_cam", "ModelGraph", "graph_for",
           "Explained", "explain_test_set"]
