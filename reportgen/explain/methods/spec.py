"""What every explanation method declares: :class:`MethodSpec` (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

#: Output kinds: what ``run`` returns and how the report shows it.
OUTPUT_KINDS = {
    "map": "(N, H, W) float32, higher = more important; shown as a heatmap over the image "
           "(scaled per image to [0, 1])",
    "attribution": "(N, H, W, C) float32 raw input attributions; shown by their largest "
                   "magnitude over the channels",
    "signed": "(N, H, W, C) float32 signed input attributions; shown in colour (grey = 0)",
}


@dataclass(frozen=True)
class Shape:
    """What a method's cost depends on: the input's height and width, and the channel count
    of the explained layer (None when the model has no conv layer)."""

    height: int
    width: int
    layer_channels: int | None = None


@dataclass(frozen=True)
class Cost:
    """Passes through the model per explained image: ``forward`` passes and ``backward``
    passes (a backward pass costs about two forward passes)."""

    forward: float
    backward: float = 0.0

    @property
    def forward_equivalents(self) -> float:
        """forward + 2 backward: the cost in units of one forward pass."""
        return self.forward + 2.0 * self.backward


@dataclass(frozen=True)
class OptionCut:
    """A method option the planner may reduce when the work is over ``explain.budget``:
    ``option`` (a field of the method's options, an int) divided by ``divide`` at each step,
    never below ``floor``; never when the user set it."""

    option: str
    floor: int
    divide: int = 2

    def smaller(self, value: int) -> int:
        """The next reduced value of ``value`` (``value`` itself at the floor)."""
        return max(self.floor, value // self.divide)


@dataclass(frozen=True)
class Reductions:
    """What the planner may reduce of one method, in the planner's order: its ``options``
    (each :class:`OptionCut` in turn, after the quality table's first cut), and, when
    ``optional``, the method itself: out of the quality table late, and out of the report as
    the last resort (the costliest optional method first, never one the user named)."""

    options: tuple[OptionCut, ...] = ()
    optional: bool = False


#: The kinds of compiled function the planner's probe times one trace of: a forward pass, a
#: backward pass to the input, and one through the head above the explained layer.
TRACE_KINDS = ("forward", "gradient", "cam")


@dataclass(frozen=True)
class NoOptions:
    """A method without options of its own."""


@dataclass(frozen=True)
class MethodSpec:
    """One explanation method, as the suite, the planner, the pages and the benchmarks see it.

    Attributes:
        name: config name (``explain.methods``, ``[explain.<name>]``).
        label: name shown in the report.
        description: one paragraph for the Methods page and report.md: what it computes, with
            the conventions that make its numbers differ from other libraries'.
        output: a key of :data:`OUTPUT_KINDS`.
        needs_conv: whether it needs a conv layer (skipped, with a note, for models without).
        needs_relu: whether it works by changing the ReLUs' gradients (skipped where the walk
            sees none, as inside a SavedModel whose graph could not be opened: it would only
            repeat the plain gradient).
        options: dataclass of its documented options (its defaults are the report's).
        cost: ``cost(options, shape) -> Cost`` per image.
        run: ``run(explainer, images, targets, options) -> np.ndarray`` (float32 batch as the
            model expects; targets (N,) int or None for the predicted class).
        reference: the paper.
        reductions: what the planner may reduce of it (:class:`Reductions`).
        compiles: the compiled functions it runs, as ``(name, trace kind)`` pairs, shared
            between methods by name ("input gradient" for the plain gradient of saliency,
            SmoothGrad, Integrated Gradients); empty: one of its own, of kind :attr:`trace`.
            The planner counts each one's tracing once per model, at the probe's trace of its
            kind (one of :data:`TRACE_KINDS`).
        trace: the trace kind of its own compiled function when :attr:`compiles` is empty.
    """

    name: str
    label: str
    description: str
    output: str
    needs_conv: bool
    options: type
    cost: Callable[[Any, Shape], Cost]
    run: Callable
    reference: str = ""
    needs_relu: bool = False
    reductions: Reductions = Reductions()
    compiles: tuple[tuple[str, str], ...] = ()
    trace: str = "forward"

    @property
    def functions(self) -> dict[str, str]:
        """{name: trace kind} of the compiled functions it runs (:attr:`compiles`, or its
        own of kind :attr:`trace`)."""
        return dict(self.compiles) if self.compiles else {self.name: self.trace}

    def __post_init__(self):
        bad = sorted(set(self.functions.values()) - set(TRACE_KINDS))
        if bad:
            raise ValueError(f"method {self.name!r}: unknown trace kind {bad[0]!r}")
        if self.output not in OUTPUT_KINDS:
            raise ValueError(f"method {self.name!r}: unknown output kind {self.output!r}")
