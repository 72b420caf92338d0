"""Errors that end a run with a one-line message instead of a traceback."""

from __future__ import annotations


class ReportgenError(Exception):
    """A mistake in the user's input: shown as one line, with ``exit_code``.

    Exit code 2 is for usage and configuration errors (the convention of Click), 1 for inputs that
    are well-formed but from which nothing useful can be built.
    """

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(ReportgenError):
    """A configuration key, value or file is wrong; the message names it."""

    exit_code = 2


class DataError(ReportgenError):
    """The data set cannot be used; the message names the folder or file."""

    exit_code = 2


class ModelError(ReportgenError):
    """The model cannot be used; the message names the file and what to do."""

    exit_code = 2


class OutputError(ReportgenError):
    """The output folder cannot be written safely; the message names it."""

    exit_code = 2


class PartsFailed(ReportgenError):
    """``--strict``: parts of the report failed (each a ``reportgen.guard.Failure`` in
    ``failures``), so the new site was not written and the previous one was left as it was."""

    exit_code = 1

    def __init__(self, failures: list, out):
        self.failures = list(failures)
        super().__init__(f"{len(self.failures)} part(s) of the report failed and --strict is "
                         f"set: {out} was left as it was (the warnings above say which)")


class ShardError(ReportgenError):
    """A shard set cannot be merged (a shard missing, given twice, of another model,
    configuration or data), or a build cannot be sharded; the message names what."""

    exit_code = 2
