"""SmoothGrad (Smilkov et al. 2017)."""

from reportgen.explain.methods.options import SmoothGradOptions
from reportgen.explain.methods.spec import Cost, MethodSpec, OptionCut, Reductions


def run(explainer, images, targets, options):
    from reportgen.explain.gradients import smooth_grad_maps

    return smooth_grad_maps(explainer, images, targets, samples=options.samples,
                            noise=options.noise, seed=options.seed)


SPEC = MethodSpec(
    name="smoothgrad",
    label="SmoothGrad",
    description=(
        "The mean input gradient over noisy copies of the image (Gaussian noise with a "
        "standard deviation of [explain.smoothgrad] noise times the image's value range), each "
        "copy explaining the clean image's predicted class."),
    output="attribution",
    needs_conv=False,
    options=SmoothGradOptions,
    cost=lambda options, shape: Cost(forward=1 + options.samples, backward=options.samples),
    run=run,
    reference="https://arxiv.org/abs/1706.03825",
    reductions=Reductions(options=(OptionCut("samples", floor=4),)),
    compiles=(("input gradient", "gradient"),),
)
