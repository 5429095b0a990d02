"""What the engine tells its front ends. Plain data: the TUI and the CLI render it."""

from __future__ import annotations

from dataclasses import dataclass

from tui.jobs import Job, JobState
from tui.providers.billing import Balance


@dataclass(frozen=True)
class JobChanged:
    """A job's row changed: a state transition (`previous` set) or new progress/estimate."""

    job: Job
    previous: JobState | None = None
    detail: str = ""

    @property
    def transition(self) -> bool:
        return self.previous is not None and self.previous != self.job.state


@dataclass(frozen=True)
class Notice:
    """Something a person should read: a provider outage, a refused key, a finished batch."""

    level: str  # "info" | "warning" | "error"
    message: str
    job_id: int | None = None


@dataclass(frozen=True)
class BudgetChanged:
    """A provider's request budget or balance moved."""

    provider: str
    rate_class: str
    used: int
    limit: int
    balance_usd: float | None = None
    blocked_until: float | None = None


@dataclass(frozen=True)
class BalanceChanged:
    """The provider said what the key can spend (read at start and after spending)."""

    provider: str
    balance: Balance


@dataclass(frozen=True)
class AllSettled:
    """No job is active any more (the moment to ring the bell)."""

    done: int
    failed: int


EngineEvent = JobChanged | Notice | BudgetChanged | BalanceChanged | AllSettled
