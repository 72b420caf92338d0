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


def say(message: str, enabled: bool = True) -> None:
    """Print a status line on stderr."""
    if enabled:
        click.echo(message, err=True)
