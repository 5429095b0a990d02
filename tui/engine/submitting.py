"""Sending the paid submit and writing down what came back.

Money rules, as implemented here: the job is claimed as `submitting` in a committed write
before the queue request; the remote id is written the moment it arrives; a submit is retried
only when it certainly did not reach the server (connection refused, 429); a timeout, reset,
redirect or 5xx after sending makes the job `unknown` -- shown, never resubmitted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from tui.engine.schedule import backoff_delay
from tui.engine.steps import STOP, Step
from tui.jobs import Job, JobState
from tui.providers.base import (
    AuthError,
    InsufficientBalance,
    NotConfigured,
    Provider,
    ProviderError,
    RateLimited,
)
from tui.store import ConnectionLost, LeaseLost

if TYPE_CHECKING:
    from tui.engine.parts import EngineParts

log = logging.getLogger("wan_tui.engine")


class Submitter:
    def __init__(self, engine: EngineParts) -> None:
        self.engine = engine
        # One submit on the wire per provider: a crash can then leave at most one job
        # `unknown`, and the queue rate (40/min on Venice) is far below one at a time anyway.
        self._locks = {name: asyncio.Lock() for name in engine.providers}
        # Paid calls on the wire, each in its own task so that stopping can wait for them.
        self.in_flight: dict[asyncio.Task[Step], Job] = {}

    async def submit(self, job: Job) -> Step:
        engine = self.engine
        provider = engine.providers.get(job.provider)
        if provider is None or not provider.configured:
            reason = (f"{job.provider} is not configured: set its API key"
                      if provider is not None else f"unknown provider {job.provider!r}")
            engine.halt(job.provider, reason)
            return STOP
        async with self._locks[job.provider]:
            await engine.balances.before_spending(job.provider)
            if job.provider in engine.halted or not engine.accepting_submits:
                return STOP
            await engine.spend(job.provider, "queue", 0.0)
            if not engine.accepting_submits:  # a stop began while we waited for the budget
                return STOP
            claimed = await engine.transition(job, JobState.SUBMITTING,
                                              "sending the paid request")
            if claimed is None:
                return STOP  # cancelled or claimed elsewhere meanwhile
            if not engine.leases.safe_to_send(job.id):
                # This engine stalled (or lost the database) since it last renewed the
                # lease: another may be adopting the job right now. Not sent; given back.
                await engine.transition(claimed, JobState.PENDING,
                                        "not sent: this engine's lease was about to run out")
                return STOP
            # The call and its store write run in their own task: a stop waits for it,
            # so a queue answer that arrives is always written down.
            call = asyncio.get_running_loop().create_task(self._call(claimed, provider),
                                                          name=f"submit-{job.id}")
            self.in_flight[call] = claimed
            call.add_done_callback(lambda t: self.in_flight.pop(t, None))
            return await asyncio.shield(call)

    async def _call(self, job: Job, provider: Provider) -> Step:
        engine = self.engine
        try:
            sub = await provider.submit(job.request)
        except ProviderError as err:
            return await self._refused(job, err)
        except Exception as exc:  # unknown failure after sending: assume it may be charged
            log.exception("submit of job %s", job.id)
            await engine.transition(job, JobState.UNKNOWN, f"submit failed oddly ({exc}); "
                                    "it may have been charged: not resubmitted")
            return STOP
        now = engine.clock.now()
        engine.balances.spent(job.provider)
        try:
            while True:
                try:
                    done = await engine.transition(
                        job, JobState.QUEUED, f"accepted as {sub.remote_id}",
                        remote_id=sub.remote_id, result_url=sub.result_url, submitted_at=now,
                        cost_usd=job.quote_usd,
                    )
                    break
                except ConnectionLost as lost:
                    # The id exists only here until it is written: write it again once the
                    # server answers. A first COMMIT that did land makes this a no-op (the
                    # job is no longer `submitting`; the id is checked below).
                    log.warning("job %s: %s; writing its id %s again", job.id, lost,
                                sub.remote_id)
                    await asyncio.sleep(1.0)
        except LeaseLost as lost:
            # This engine stalled mid-submit and another adopted the job (it is `unknown`
            # there): the id is still written down, in the timeline, for `wan-tui resolve`.
            await engine.store.note(
                job.id, f"accepted as {sub.remote_id} after this engine lost the job's lease "
                f"to engine {lost.owner}: `wan-tui resolve {job.id} --charged --remote-id "
                f"{sub.remote_id}` follows it")
            raise
        if done is None:
            current = await engine.store.get(job.id)
            if (current is not None and current.state == JobState.QUEUED
                    and current.remote_id == sub.remote_id):
                return None  # our own first write had landed after all: follow it
            # The row moved under us (another process?): the id must still be kept.
            await engine.store.update(job.id, event=f"accepted as {sub.remote_id}",
                                      remote_id=sub.remote_id, result_url=sub.result_url,
                                      submitted_at=now)
            return STOP
        return None

    async def _refused(self, job: Job, err: ProviderError) -> Step:
        engine = self.engine
        if err.sent:
            await engine.transition(
                job, JobState.UNKNOWN,
                f"{err} -- the request may have reached {job.provider} and been charged; "
                "not resubmitted. Check the provider, then cancel or re-queue",
                error=str(err),
            )
            return STOP
        if isinstance(err, AuthError | InsufficientBalance | NotConfigured):
            # Every other job would be refused the same way: keep them pending, say why once.
            await engine.transition(job, JobState.PENDING, f"not sent: {err}")
            engine.halt(job.provider, str(err))
            return STOP
        if err.retryable:  # 429 or a refused connection: certainly not accepted
            await engine.transition(job, JobState.PENDING, f"not sent ({err}); will retry")
            budget = engine.budgets.get((job.provider, "queue"))
            if isinstance(err, RateLimited) and budget is not None:
                budget.block_for(err.retry_after or engine.policy.backoff_base_s)
            await engine.clock.sleep(backoff_delay(engine.policy, 1, err.retry_after,
                                                   engine.rng))
            return None
        await engine.transition(job, JobState.FAILED, f"refused: {err}", error=str(err),
                                finished_at=engine.clock.now())
        return STOP

    async def abandon(self) -> list[Job]:
        """A forced stop: paid calls still on the wire are cut off. Their jobs become
        `unknown` now (maybe charged, id not known) rather than at the next start."""
        left = list(self.in_flight.items())
        for task, _ in left:
            task.cancel()
        await asyncio.gather(*(t for t, _ in left), return_exceptions=True)
        lost = []
        for _, job in left:
            moved = await self.engine.transition(
                job, JobState.UNKNOWN,
                "stopped while the paid request was on the wire: it may have been charged. "
                "Not resubmitted; check the provider, then cancel or re-queue")
            if moved is not None:
                lost.append(moved)
        return lost
