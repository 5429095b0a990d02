"""What the engine's parts (submitting, following, downloading, balance, settle) use of
the engine.

Each part holds the engine it works for; typing that as these protocols instead of
`Engine` keeps the imports one way (engine.py imports the parts, never the reverse), and
says in one place what a part may touch: the store, the providers, the clock and policy,
the request budgets, transitions and events.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Protocol

from tui.engine.batchpoll import BatchPoller
from tui.engine.budget import Priority, RequestBudget
from tui.engine.clock import Clock
from tui.engine.events import EngineEvent
from tui.engine.leases import Leases
from tui.engine.schedule import PollPolicy
from tui.engine.steps import Step
from tui.jobs import Job, JobState
from tui.providers.base import Provider, Ready
from tui.store import Store


class Downloads(Protocol):
    """The download step, as the follower hands a ready job to it."""

    async def download(self, job: Job, ready: Ready | None) -> Step: ...


class Balances(Protocol):
    """The balance watch, as a submit consults it."""

    async def before_spending(self, name: str) -> None: ...

    def spent(self, name: str) -> None: ...


class EngineParts(Protocol):
    """The engine as its parts see it."""

    store: Store
    leases: Leases
    providers: dict[str, Provider]
    clock: Clock
    policy: PollPolicy
    rng: random.Random
    budgets: dict[tuple[str, str], RequestBudget]
    batch_pollers: dict[str, BatchPoller]
    halted: dict[str, str]
    accepting_submits: bool
    output_dir: Path
    delete_after_download: bool
    write_sidecars: bool

    @property
    def downloader(self) -> Downloads: ...

    @property
    def balances(self) -> Balances: ...

    @property
    def running(self) -> bool: ...

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]: ...

    async def rescan(self) -> None: ...

    def emit(self, event: EngineEvent) -> None: ...

    def notice(self, level: str, message: str, job_id: int | None = None) -> None: ...

    def halt(self, provider: str, reason: str) -> None: ...

    def budget(self, provider: str, rate_class: str) -> RequestBudget: ...

    async def spend(self, provider: str, rate_class: str, priority: Priority) -> None: ...

    async def transition(self, job: Job, new: JobState, detail: str = "",
                         **fields: object) -> Job | None: ...

    async def get(self, job_id: int) -> Job: ...
