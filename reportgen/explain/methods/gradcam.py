"""GradCAM (Selvaraju et al. 2017)."""

from reportgen.explain.methods.spec import Cost, MethodSpec, NoOptions


def run(explainer, images, targets, options):
    from reportgen.explain.cam import cam_maps

    return cam_maps(explainer, "gradcam", images, targets)


SPEC = MethodSpec(
    name="gradcam",
    label="GradCAM",
    description=(
        "ReLU of the explained layer's activations weighted by the spatial mean of the "
        "gradient of the class logit (not the softmax probability, whose saturation flattens "
        "the map), with weights computed per image. Each map is min-max scaled at the layer's "
        "resolution (a constant map gives zeros), then resized bilinearly with half-pixel "
        "centres. The default layer is the last convolution's output after its BatchNorm and "
        "activation (never a pooling layer; larger than 1x1), where tf-keras-vis and xplique "
        "take the last convolution before BatchNorm and ReLU."),
    output="map",
    needs_conv=True,
    options=NoOptions,
    cost=lambda options, shape: Cost(forward=1, backward=1),
    run=run,
    reference="https://arxiv.org/abs/1610.02391",
    compiles=(("cam gradcam", "cam"),),
)
