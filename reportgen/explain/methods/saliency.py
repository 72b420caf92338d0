"""Vanilla gradient saliency (Simonyan et al. 2014)."""

from reportgen.explain.methods.spec import Cost, MethodSpec, NoOptions


def run(explainer, images, targets, options):
    from reportgen.explain.gradients import input_gradients

    return input_gradients(explainer, "plain", images, targets)


SPEC = MethodSpec(
    name="saliency",
    label="Saliency",
    description=(
        "The gradient of the class logit with respect to the input pixels (as the model "
        "receives them), signed and unnormalized; the page shows its largest absolute value "
        "over the colour channels."),
    output="attribution",
    needs_conv=False,
    options=NoOptions,
    cost=lambda options, shape: Cost(forward=1, backward=1),
    run=run,
    reference="https://arxiv.org/abs/1312.6034",
    compiles=(("input gradient", "gradient"),),
)
