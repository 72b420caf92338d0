"""Names and labels of the explanation methods (plain data, shared by config and the report)."""

#: config name -> (label in the report, kind): "cam" maps (N, H, W) in [0, 1]; "grad" raw input
#: attributions shown by magnitude; "signed" raw attributions shown in colour with their sign.
METHODS = {
    "gradcam": ("GradCAM", "cam"),
    "gradcam++": ("GradCAM++", "cam"),
    "layercam": ("LayerCAM", "cam"),
    "scorecam": ("ScoreCAM", "cam"),
    "saliency": ("Saliency", "grad"),
    "smoothgrad": ("SmoothGrad", "grad"),
    "integrated_gradients": ("Integrated Gradients", "grad"),
    "guided_backprop": ("Guided backprop", "signed"),
    "deconvnet": ("Deconvnet", "signed"),
    "guided_gradcam": ("Guided GradCAM", "signed"),
}
METHOD_NAMES = tuple(METHODS)
