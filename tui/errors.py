"""The one root of every error wan-tui raises on purpose.

`str(err)` is one line for a human (what was wrong, how to fix it) and `exit_status` is what the
command line exits with, so `cli.main` catches `WanError` once instead of a list of kinds.
Each module keeps its own subclass (ValidationError in the domain, ProviderError in the
adapters, ...) and sets its status on the class; this module imports nothing of ours.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT


class WanError(Exception):
    """A failure described in one line. Subclasses set `exit_status` for their kind."""

    exit_status: int = EXIT_FAIL


class UsageError(WanError):
    """Bad input or configuration that the user can fix: exit 2."""

    exit_status = EXIT_USAGE


class Failure(WanError):
    """An operation failed (provider refused, job failed): exit 1."""


class ConfigError(WanError, ValueError):
    """A configuration problem, described in one line (tui.config raises it, and so does
    tui.termcaps for the pictures' setting: here, so neither imports the other for it)."""

    exit_status = EXIT_USAGE
