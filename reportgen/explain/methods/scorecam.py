"""ScoreCAM (Wang et al. 2020)."""

from reportgen.explain.methods.options import ScoreCamOptions
from reportgen.explain.methods.spec import Cost, MethodSpec, OptionCut, Reductions


def run(explainer, images, targets, options):
    from reportgen.explain.cam import score_cam_maps

    return score_cam_maps(explainer, images, targets, max_channels=options.channels)


def cost(options, shape):
    k = options.channels if shape.layer_channels is None else min(options.channels,
                                                                   shape.layer_channels)
    return Cost(forward=1 + k)


SPEC = MethodSpec(
    name="scorecam",
    label="ScoreCAM",
    description=(
        "Gradient-free: each of the most active channels of the explained layer (at most "
        "[explain.scorecam] channels per image, a cap that keeps 2,048-channel backbones "
        "tractable) is resized to the input, min-max scaled and multiplied into the image; its "
        "weight is the class probability of that masked image, and the map is "
        "ReLU(sum_k p_k A_k). Peers mask with every channel; the cap and the choice by mean "
        "activation are reportgen's."),
    output="map",
    needs_conv=True,
    options=ScoreCamOptions,
    cost=cost,
    run=run,
    reference="https://arxiv.org/abs/1910.01279",
    reductions=Reductions(options=(OptionCut("channels", floor=8),)),
    compiles=(("scorecam activations", "forward"), ("probabilities", "forward")),
)
