"""Guided GradCAM (Selvaraju et al. 2017)."""

from reportgen.explain.methods.spec import Cost, MethodSpec, NoOptions


def run(explainer, images, targets, options):
    from reportgen.explain.gradients import guided_grad_cam_maps

    return guided_grad_cam_maps(explainer, images, targets)


SPEC = MethodSpec(
    name="guided_gradcam",
    label="Guided GradCAM",
    description=(
        "Guided backprop multiplied by the upsampled GradCAM map of the same class: "
        "pixel-level detail, class-specific."),
    output="signed",
    needs_conv=True,
    options=NoOptions,
    cost=lambda options, shape: Cost(forward=3, backward=2),
    run=run,
    reference="https://arxiv.org/abs/1610.02391",
    compiles=(("guided gradient", "gradient"), ("cam gradcam", "cam")),
)
