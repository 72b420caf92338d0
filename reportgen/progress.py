"""Progress bars on stderr (click), so stdout keeps only the result."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import click


@contextmanager
def bar(label: str, length: int, enabled: bool = True):
    """Yield ``advance(n)``; draws a click progress bar of ``length`` steps on stderr."""
    if not enabled or length <= 0:
        yield lambda n=1: None
        return
    with click.progressbar(length=length, label=label.ljust(22), file=sys.stderr,
                           show_eta=True, show_percent=True, width=24) as b:
        yield b.update


def weighted(advance, weights: list[float], scale: float = 10.0):
    """``advance`` of a bar of ``steps(weights, scale)`` units, as a callable advancing one step
    of ``weights`` per call (``advance(n)`` advances ``n`` steps): a bar whose steps take
    unequal time (``weights``, in seconds) shows an ETA in seconds."""
    done = [0]

    def step(n: int = 1) -> None:
        for _ in range(n):
            if done[0] < len(weights):
                advance(max(1, round(weights[done[0]] * scale)))
                done[0] += 1
    return step


def steps(weights: list[float], scale: float = 10.0) -> int:
    """The length of a :func:`weighted` bar."""
    return sum(max(1, round(w * scale)) for w in weights)


def say(message: str, enabled: bool = True) -> None:
    """Print a status line on stderr."""
    if enabled:
        click.echo(message, err=True)
