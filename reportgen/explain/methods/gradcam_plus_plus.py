"""GradCAM++ (Chattopadhyay et al. 2018)."""

from reportgen.explain.methods.spec import Cost, MethodSpec, NoOptions


def run(explainer, images, targets, options):
    from reportgen.explain.cam import cam_maps

    return cam_maps(explainer, "gradcam++", images, targets)


SPEC = MethodSpec(
    name="gradcam++",
    label="GradCAM++",
    description=(
        "GradCAM with channel weights that sum the positive gradients, each weighted by the "
        "closed-form alpha of the exponential score (the paper's eq. 19: second- and "
        "third-order derivatives become powers of the first-order gradient). tf-keras-vis "
        "follows the authors' code (alpha also divided by its spatial sum) and xplique uses the "
        "spatial mean of the activations, so maps differ from theirs slightly (up to 0.015 at "
        "8x8, more at 4x4). Scaling and resizing as GradCAM."),
    output="map",
    needs_conv=True,
    options=NoOptions,
    cost=lambda options, shape: Cost(forward=1, backward=1),
    run=run,
    reference="https://arxiv.org/abs/1710.11063",
    trace="cam",
)
