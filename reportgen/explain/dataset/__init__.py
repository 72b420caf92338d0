"""Explanations over a whole data set: strategies (the test images of a class clustered by
their GradCAM maps, :mod:`.strategies`) and concepts (NMF of the explained layer's activations,
:mod:`.concepts`). The clustering and the factorisation are numpy only; :mod:`.run` computes
the activations with TensorFlow and ties both to the build."""
