"""Deconvnet (Zeiler and Fergus 2014)."""

from reportgen.explain.methods.spec import Cost, MethodSpec, NoOptions


def run(explainer, images, targets, options):
    from reportgen.explain.gradients import input_gradients

    return input_gradients(explainer, "deconv", images, targets)


SPEC = MethodSpec(
    name="deconvnet",
    label="Deconvnet",
    description=(
        "The input gradient with every ReLU's gradient replaced by dy * (dy > 0), ignoring the "
        "sign of the forward input."),
    output="signed",
    needs_conv=False,
    needs_relu=True,
    options=NoOptions,
    cost=lambda options, shape: Cost(forward=1, backward=1),
    run=run,
    reference="https://arxiv.org/abs/1311.2901",
    trace="gradient",
)
