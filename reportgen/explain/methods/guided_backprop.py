"""Guided backpropagation (Springenberg et al. 2015)."""

from reportgen.explain.methods.spec import Cost, MethodSpec, NoOptions


def run(explainer, images, targets, options):
    from reportgen.explain.gradients import input_gradients

    return input_gradients(explainer, "guided", images, targets)


SPEC = MethodSpec(
    name="guided_backprop",
    label="Guided backprop",
    description=(
        "The input gradient with every ReLU's gradient replaced by dy * (dy > 0) * (x > 0): "
        "ReLU layers, Activation(\"relu\"), layers with activation=\"relu\" and ReLU6, inside "
        "nested models too, on a private copy of the graph. Through ReLU6 the cap is kept "
        "(the gradient passes where 0 < x < 6); xplique gates on x > 0 only."),
    output="signed",
    needs_conv=False,
    needs_relu=True,
    options=NoOptions,
    cost=lambda options, shape: Cost(forward=1, backward=1),
    run=run,
    reference="https://arxiv.org/abs/1412.6806",
    compiles=(("guided gradient", "gradient"),),
)
