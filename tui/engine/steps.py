"""Small shared vocabulary of the engine's per-job steps."""

from __future__ import annotations

from tui.jobs import JobState

# States in which the job is on the provider and we poll it.
FOLLOWED = (JobState.QUEUED, JobState.PROCESSING)


class _Stop:
    """A step's way of saying "this job's task has nothing more to do"."""

    def __repr__(self) -> str:
        return "STOP"


STOP = _Stop()
# What a step returns: STOP, or None for "look at the job again and take the next step".
Step = _Stop | None
