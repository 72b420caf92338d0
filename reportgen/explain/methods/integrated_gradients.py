"""Integrated Gradients (Sundararajan et al. 2017)."""

from reportgen.explain.methods.options import IntegratedGradientsOptions
from reportgen.explain.methods.spec import Cost, MethodSpec, OptionCut, Reductions


def run(explainer, images, targets, options):
    from reportgen.explain.gradients import integrated_gradient_maps

    return integrated_gradient_maps(explainer, images, targets, steps=options.steps)


SPEC = MethodSpec(
    name="integrated_gradients",
    label="Integrated Gradients",
    description=(
        "(x - baseline) times the mean gradient along the straight path from a black baseline "
        "to the image, by the trapezoidal rule over [explain.integrated_gradients] steps "
        "intervals (steps + 1 gradient evaluations; xplique's steps counts evaluations). The "
        "attributions sum to about logit(x) - logit(baseline) (completeness)."),
    output="attribution",
    needs_conv=False,
    options=IntegratedGradientsOptions,
    cost=lambda options, shape: Cost(forward=2 + options.steps, backward=1 + options.steps),
    run=run,
    reference="https://arxiv.org/abs/1703.01365",
    reductions=Reductions(options=(OptionCut("steps", floor=8),)),
    compiles=(("input gradient", "gradient"),),
)
