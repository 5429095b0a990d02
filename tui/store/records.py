"""What the store hands back besides jobs: its error, spend, batch counts, engine
requests and events. Plain values, the same whichever database holds the history."""

from __future__ import annotations

from dataclasses import dataclass

from tui.errors import WanError
from tui.jobs import JobState


class StoreError(WanError):
    """The database cannot do what was asked. The message is one line for a human."""


class ConnectionLost(StoreError):
    """The database server went away and did not come back within the store's patience,
    or a COMMIT got no answer. Passing: the engine tries the job again, and a write whose
    fate is unknown is read back before it is made again."""


class LeaseLost(StoreError):
    """A fenced write refused: another engine holds the job's lease now (it adopted the
    job while this one was stopped, cut off or stalled). Nothing was written."""

    def __init__(self, job_id: int, owner: str | None, epoch: int) -> None:
        super().__init__(f"job {job_id} is followed by engine {owner or '?'} now (lease "
                         f"epoch {epoch}); this engine lost its lease and writes nothing")
        self.job_id = job_id
        self.owner = owner


@dataclass(frozen=True)
class Claim:
    """A lease an engine took (Store.claim_jobs): the job, its epoch, its state then, and
    the engine that held it before, if another one did (an adoption)."""

    job_id: int
    epoch: int
    state: JobState
    previous: str | None


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


# An engine not heard from for this long has lost its leases (the default `engine_lease_s`):
# the other engines adopt its active jobs.
STALE_ENGINE_S = 30.0


@dataclass(frozen=True)
class TeamEngine:
    """One engine of a team, as its row in `engines` says (each engine writes its own and
    beats its heart there), with how many active jobs it holds the lease of."""

    name: str  # WAN_TUI_ENGINE_NAME, else the host name: what `owner` and `origin` say
    host: str
    pid: int
    home: str
    output_dir: str
    started_at: float
    heartbeat_at: float
    stopped_at: float | None  # set when it ended in order; None while it runs (or died)
    active_jobs: int

    def silent_for(self, now: float) -> float:
        """Seconds since its last heartbeat (the age of its leases' last renewal)."""
        return max(0.0, now - self.heartbeat_at)

    def stale(self, now: float, lease_s: float = STALE_ENGINE_S) -> bool:
        """Not stopped, yet not heard from for longer than a lease: dead, cut off or stalled."""
        return self.stopped_at is None and self.silent_for(now) > lease_s


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
