"""What the submission screens return: requests whose prices the user has seen."""

from __future__ import annotations

from dataclasses import dataclass

from tui.jobs import JobRequest
from tui.providers.base import Quote


@dataclass(frozen=True)
class SubmitResult:
    requests: list[JobRequest]
    quotes: list[Quote]  # one per request, shown before the user confirmed
    # One per request: the job it was made from ("like this", a variation), or None.
    sources: list[int | None] | None = None

    @property
    def total_usd(self) -> float:
        return sum(q.usd for q in self.quotes)
