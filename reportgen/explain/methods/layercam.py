"""LayerCAM (Jiang et al. 2021)."""

from reportgen.explain.methods.spec import Cost, MethodSpec, NoOptions


def run(explainer, images, targets, options):
    from reportgen.explain.cam import cam_maps

    return cam_maps(explainer, "layercam", images, targets)


SPEC = MethodSpec(
    name="layercam",
    label="LayerCAM",
    description=(
        "Each activation weighted element-wise by its positive gradient, summed over the "
        "channels: ReLU(sum_c ReLU(d logit / d A_c) * A_c). Sharper than GradCAM at shallow "
        "layers. Scaling and resizing as GradCAM."),
    output="map",
    needs_conv=True,
    options=NoOptions,
    cost=lambda options, shape: Cost(forward=1, backward=1),
    run=run,
    reference="https://ieeexplore.ieee.org/document/9462463",
    trace="cam",
)
