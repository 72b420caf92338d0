"""SmoothGrad (Smilkov et al. 2017)."""

from dataclasses import dataclass

from reportgen.config import option
from reportgen.explain.methods.spec import Cost, MethodSpec, OptionCut, Reductions


@dataclass
class SmoothGradOptions:
    samples: int = option(10, "Noisy copies averaged by SmoothGrad.", minimum=1)
    noise: float = option(0.15, "Standard deviation of the Gaussian noise, as a fraction of "
                          "each image's value range (max - min).", minimum=0.0)
    seed: int = option(0, "Seed of the noise.", minimum=0)


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
    compiles=("input gradient",),
)
