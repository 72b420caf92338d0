"""One failing part never loses a build: the guard around every optional part.

A part of the report that can fail on a user's model (a Layers view, a method on the sample
images, a row of the quality table, the sanity check, a figure) runs inside
:func:`optional_part`. Inside a build (:func:`collecting`), an exception there becomes a
:class:`Failure` ({part, layer, error}) and the build goes on without that part; the pages note
it where it would have been, ``metrics.json`` lists it under ``failures``, and the terminal
ends with a warning line per failure. Outside a build (the API, a unit test) the exception
propagates as usual. User errors (:class:`~reportgen.errors.ReportgenError`), Ctrl-C,
``SystemExit`` and the machine's own errors (a full disk, a file over the size limit, a
quota, a read-only file system: :data:`MACHINE_ERRNOS`) always propagate: they are no part's
fault, and the build ends in one line with the previous site intact.

No TensorFlow, numpy or matplotlib here: every layer (explain, figures, report, pipeline) uses
this one guard.
"""

from __future__ import annotations

import errno
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass

from reportgen.errors import ReportgenError
from reportgen.text import printable

#: Longest error text kept (the first line of the message, then an ellipsis).
MAX_ERROR = 300

#: ``OSError`` numbers that end the build wherever they happen: every later part would fail
#: the same way, and a site written without them would be silently incomplete.
MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})

_SINK: ContextVar[list | None] = ContextVar("reportgen_failures", default=None)


@dataclass(frozen=True)
class Failure:
    """A part that failed: what (``part``), on which layer (None: not a layer's view), and
    the one-line reason (``error``: the exception's type and first message line)."""

    part: str
    layer: str | None
    error: str

    def as_dict(self) -> dict:
        """{part, layer, error} as in ``metrics.json``."""
        return asdict(self)

    def line(self) -> str:
        """One line for the terminal and the pages: ``learned filters of layer 'c1' failed:
        ValueError: ...``."""
        on = f" of layer {self.layer!r}" if self.layer else ""
        return f"{self.part}{on} failed: {self.error}"


class Part:
    """The handle :func:`optional_part` yields: set ``layer`` once the block knows it;
    ``failure`` is the :class:`Failure` recorded when the block failed (None otherwise)."""

    def __init__(self, name: str, layer: str | None):
        self.name, self.layer = name, layer
        self.failure: Failure | None = None


def one_line(err: BaseException) -> str:
    """``Type: first line of the message`` (TensorFlow's messages run over many lines), at
    most :data:`MAX_ERROR` characters, printable."""
    lines = [s.strip() for s in str(err).splitlines() if s.strip()]
    text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    text = printable(" ".join(text.split()))
    return text if len(text) <= MAX_ERROR else text[:MAX_ERROR - 1] + "…"


@contextmanager
def collecting(into: list | None = None):
    """Record the failures of every :func:`optional_part` inside the block into ``into`` (a
    new list when None), which is yielded. Nested blocks record into the innermost list."""
    sink = [] if into is None else into
    token = _SINK.set(sink)
    try:
        yield sink
    finally:
        _SINK.reset(token)


@contextmanager
def optional_part(part: str, layer: str | None = None):
    """Run the block as the optional part ``part`` (of ``layer``): inside :func:`collecting`,
    an exception (other than a user error or an interrupt) ends the block, is recorded as a
    :class:`Failure` and is not raised; outside, it propagates. Yields a :class:`Part` whose
    ``layer`` the block may set."""
    handle = Part(part, layer)
    try:
        yield handle
    except ReportgenError:
        raise
    except Exception as e:  # any failure of one part is that part's, never the build's
        sink = _SINK.get()
        if sink is None or (isinstance(e, OSError) and e.errno in MACHINE_ERRNOS):
            raise
        handle.failure = Failure(part, handle.layer, one_line(e))
        sink.append(handle.failure)


def failed(failures: list[Failure], *parts: str) -> list[Failure]:
    """The failures of ``parts`` (all when none is given), in order."""
    return [f for f in failures if not parts or f.part in parts]
