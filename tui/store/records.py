"""What the store hands back besides jobs: its error, spend, batch counts, engine
requests and events. Plain values, the same whichever database holds the history."""

from __future__ import annotations

from dataclasses import dataclass

from tui.errors import WanError
from tui.jobs import JobState


class StoreError(WanError):
    """The database cannot do what was asked. The message is one line for a human."""


@dataclass(frozen=True)
class Spend:
    """Money over a period. `maybe_usd` is the quoted price of `unknown` jobs: the submit
    may have reached the provider, so it may have been charged; until the user settles
    them (`wan-tui resolve`) it counts, marked "maybe charged"."""

    charged_usd: float
    maybe_usd: float = 0.0
    maybe_jobs: int = 0

    @property
    def total_usd(self) -> float:
        return self.charged_usd + self.maybe_usd


@dataclass(frozen=True)
class BatchStats:
    """One batch (jobs recorded together) counted in SQL: how many in each state, the
    money committed (every job that is or may be charged, at its cost or quote) and
    delivered (jobs done), and its times."""

    batch_id: int
    counts: dict[JobState, int]
    committed_usd: float
    delivered_usd: float
    created_at: float
    first_submitted_at: float | None
    last_finished_at: float | None
    prompt: str  # its first job's, to recognise it by

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class EngineRequest:
    """An action a window asked of the engine (see Store.post_request)."""

    id: int
    kind: str  # "cancel" | "delete" | "stop"
    job_id: int | None
    created_at: float


@dataclass(frozen=True)
class Event:
    job_id: int
    at: float
    state: JobState  # the state after the event (unchanged for informational events)
    detail: str




@dataclass(frozen=True)
class RateSlot:
    """The shared rate budget's answer to "may this engine send one more request?"."""

    wait_s: float  # 0.0: granted (and recorded); else seconds until one may fit
    used: int  # the key's requests in the window, this one included when granted
    blocked_until: float  # a 429's Retry-After (or the server's reset) on the key; 0 if none
    limit: int  # the limit counted against: the provider's last word on it, else the asker's
