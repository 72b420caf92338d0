"""The compiled forward pass of a model, and its outputs on images in batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import keras
import numpy as np

from reportgen.model.summary import output_count

if TYPE_CHECKING:  # annotations only: no import at run time
    from reportgen.data.store import Images


def forward_function(model: keras.Model, shape: tuple[int, int, int], output_index: int = 0
                     ) -> Callable[[Any], Any]:
    """The compiled forward pass of ``model`` (training=False) on float32 batches of images of
    ``shape`` (H, W, C), returning output ``output_index``: one trace, however many batches
    and arrays it is called on (a ``tf.function`` made per call would trace the model again)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.float32)], autograph=False)
    def run(x: Any) -> Any:
        out = keras.tree.flatten(model(x, training=False))
        return out[output_index]

    return run


def predict_outputs(model: keras.Model, images: np.ndarray | Images, *, batch_size: int = 64,
                    output_index: int = 0, progress: Callable[[int], None] | None = None,
                    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
                    forward: Callable[[Any], Any] | None = None) -> np.ndarray:
    """Return the model's output ``output_index`` on ``images`` (float32 (N, K)), in batches
    under one compiled function (training=False). ``preprocess`` is applied batch by batch, so
    only one batch is ever held as float32. ``forward``: the :func:`forward_function` of this
    model, shape and output to reuse (several arrays, one trace); None makes one."""
    import tensorflow as tf

    run = forward or forward_function(model, tuple(images.shape[1:]), output_index)
    outs = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        batch = preprocess(batch) if preprocess else batch.astype(np.float32)
        outs.append(run(tf.constant(batch)).numpy())
        if progress:
            progress(len(batch))
    if not outs:
        return np.zeros((0, output_count(model, output_index)), np.float32)
    return np.concatenate(outs).astype(np.float32)
