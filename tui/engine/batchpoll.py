"""One status request per round for providers that can poll many tasks at once (AceData).

Each job's task still decides *when* it wants news; the first one due opens a round, which
waits a moment for others, then asks about every job of that provider being followed.
Answers for jobs that were not asking are delivered to them as news (a finished job learns
it without a request of its own, a running one restarts its timer from this round).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from tui.engine.clock import Clock
from tui.engine.schedule import PollPolicy
from tui.jobs import Job
from tui.providers.base import Outcome, Processing, Provider, ProviderError


class BatchHost(Protocol):
    """What a batch poller needs from the engine, and nothing more."""

    clock: Clock
    policy: PollPolicy

    async def spend(self, provider: str, rate_class: str, priority: float) -> None: ...

    def followed_jobs(self, provider: str) -> list[Job]: ...

    def deliver_news(self, job_id: int, outcome: Outcome | ProviderError) -> None: ...


class BatchPoller:
    def __init__(self, engine: BatchHost, provider: Provider) -> None:
        self.engine = engine
        self.provider = provider
        self.rounds = 0  # status requests sent (one per round)
        self._waiting: dict[int, tuple[Job, asyncio.Future[Outcome | ProviderError]]] = {}
        self._priority = 0.0
        self._round: asyncio.Task[None] | None = None

    async def poll(self, job: Job, priority: float) -> Outcome | ProviderError:
        fut: asyncio.Future[Outcome | ProviderError] = (
            asyncio.get_running_loop().create_future())
        self._waiting[job.id] = (job, fut)
        self._priority = max(self._priority, priority)
        if self._round is None or self._round.done():
            self._round = asyncio.get_running_loop().create_task(self._run_round())
        return await fut

    async def _run_round(self) -> None:
        # Jobs that ask while a round is on the wire wait for the next one: keep going
        # until nobody waits, or they would wait for a round that never starts.
        while self._waiting:
            await self._one_round()

    async def _one_round(self) -> None:
        await self.engine.clock.sleep(self.engine.policy.batch_gather_s)
        waiting, self._waiting = self._waiting, {}
        priority, self._priority = self._priority, 0.0
        jobs = {job.id: job for job, _ in waiting.values()}
        for job in self.engine.followed_jobs(self.provider.name):
            jobs.setdefault(job.id, job)
        await self.engine.spend(self.provider.name, "retrieve", priority)
        self.rounds += 1
        try:
            results: dict[int, Outcome | ProviderError] = await self.provider.poll_many(
                list(jobs.values()))
        except ProviderError as err:
            results = {job_id: err for job_id in jobs}
        for job_id, (_, fut) in waiting.items():
            if not fut.done():
                fut.set_result(results.get(job_id, Processing()))
        for job_id, outcome in results.items():
            if job_id not in waiting and not isinstance(outcome, ProviderError):
                # Even "still processing" counts as that job's poll: its timer restarts
                # from this round, so the jobs fall into step and share later rounds.
                self.engine.deliver_news(job_id, outcome)

    async def aclose(self) -> None:
        if self._round is not None:
            self._round.cancel()
            await asyncio.gather(self._round, return_exceptions=True)
        for _, fut in self._waiting.values():
            fut.cancel()
