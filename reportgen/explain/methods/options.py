"""The options of the methods whose maps are computed in :mod:`reportgen.explain.cam` and
:mod:`reportgen.explain.gradients` (ScoreCAM, SmoothGrad, Integrated Gradients), in a module of
their own: those modules take their functions' defaults from here, while the method files
reach them only inside ``run``, so no import closes a circle. Each method's spec names its
options class as any other's does."""

from dataclasses import dataclass

from reportgen.config import option


@dataclass
class ScoreCamOptions:
    channels: int = option(16, "ScoreCAM channel cap (the most active channels of each image "
                           "first); bounds its cost.", minimum=1)


@dataclass
class SmoothGradOptions:
    samples: int = option(10, "Noisy copies averaged by SmoothGrad.", minimum=1)
    noise: float = option(0.15, "Standard deviation of the Gaussian noise, as a fraction of "
                          "each image's value range (max - min).", minimum=0.0)
    seed: int = option(0, "Seed of the noise.", minimum=0)


@dataclass
class IntegratedGradientsOptions:
    steps: int = option(16, "Intervals of the path integral (steps + 1 gradient "
                        "evaluations; xplique's steps counts the evaluations).", minimum=1)
