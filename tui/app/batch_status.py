"""The current batch at a glance: progress, an ETA for the whole batch, throughput.

Pure arithmetic over what the store counted (BatchStats) and the batch's jobs still
running; no Textual, so it is tested without an app.

The ETA: each running job finishes at its own estimate (the provider's, or the one learned
from the model's history); a job without one is taken at the mean of those that have one.
Jobs not sent yet start as running ones finish (the batch keeps as many at work as it has
now), so the batch ends when the last of them does.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from tui.jobs import Job, JobState

NOT_DONE = (JobState.FAILED, JobState.EXPIRED, JobState.UNKNOWN)


class BatchStats(Protocol):
    """What the summary reads of a batch as the store counted it (the store's BatchStats,
    which the facade hands over: named here so that this module and the facade do not
    import each other)."""

    @property
    def batch_id(self) -> int: ...
    @property
    def counts(self) -> dict[JobState, int]: ...
    @property
    def committed_usd(self) -> float: ...
    @property
    def delivered_usd(self) -> float: ...
    @property
    def first_submitted_at(self) -> float | None: ...
    @property
    def last_finished_at(self) -> float | None: ...
    @property
    def prompt(self) -> str: ...
    @property
    def total(self) -> int: ...


class Running(NamedTuple):
    """What the ETA needs of a job still running (read without building the whole job)."""

    state: JobState
    estimate_s: float | None
    submitted_at: float | None
    created_at: float
    finished_at: float | None = None
    updated_at: float = 0.0


def from_rows(rows: Iterable[Sequence[Any]]) -> list[Running]:
    return [Running(JobState(row[0]), row[1], row[2], row[3]) for row in rows]


@dataclass(frozen=True)
class BatchSummary:
    stats: BatchStats
    eta_s: float | None  # until the last job of the batch is done; None: no estimate yet
    per_hour: float | None  # jobs done per hour since the batch's first submit

    @property
    def batch_id(self) -> int:
        return self.stats.batch_id

    @property
    def total(self) -> int:
        return self.stats.total

    @property
    def done(self) -> int:
        return self.stats.counts.get(JobState.DONE, 0)

    @property
    def failed(self) -> int:
        return sum(self.stats.counts.get(s, 0) for s in NOT_DONE)

    @property
    def cancelled(self) -> int:
        return self.stats.counts.get(JobState.CANCELLED, 0)

    @property
    def active(self) -> int:
        return sum(n for s, n in self.stats.counts.items() if s.active)


def remaining_s(job: Job | Running, now: float, fallback: float | None) -> float | None:
    """How long until this running job is done, by its estimate."""
    if job.state == JobState.DOWNLOADING:
        return 0.0
    estimate = job.estimate_s or fallback
    if estimate is None:
        return None
    elapsed = now - (job.submitted_at or job.created_at)  # it is running: no end yet
    return max(0.0, estimate - elapsed)


def batch_eta(active: Sequence[Job | Running], now: float) -> float | None:
    known = [j.estimate_s for j in active if j.estimate_s]
    mean = sum(known) / len(known) if known else None
    running = [j for j in active if j.state != JobState.PENDING]
    waiting = [j for j in active if j.state == JobState.PENDING]
    ends: list[float] = []
    for job in running:
        left = remaining_s(job, now, mean)
        if left is None:
            return None
        ends.append(left)
    if not waiting:
        return max(ends, default=0.0)
    if mean is None:
        return None
    # One slot per job at work now (at least one): a waiting job takes the first free one.
    slots = sorted(ends) or [0.0]
    heapq.heapify(slots)
    last = max(slots)
    for job in waiting:
        start = heapq.heappop(slots)
        end = start + (job.estimate_s or mean)
        last = max(last, end)
        heapq.heappush(slots, end)
    return last


def summarize(stats: BatchStats, active: Sequence[Job | Running],
              now: float) -> BatchSummary:
    done = stats.counts.get(JobState.DONE, 0)
    per_hour = None
    if done and stats.first_submitted_at is not None:
        # Over the time the batch has run: up to now, or its last finish once it is over.
        end = now if any(s.active and n for s, n in stats.counts.items()) else (
            stats.last_finished_at or now)
        span = end - stats.first_submitted_at
        per_hour = done * 3600 / span if span > 0 else None
    return BatchSummary(stats, batch_eta(active, now) if active else 0.0, per_hour)
