"""The engine: owns running jobs, one asyncio task per active job.

It knows nothing of Textual or of printing. Front ends (the dashboard, the headless CLI)
subscribe to its events and call its small public API. The work itself lives in modules
named for it: `submitting` (the paid call and its id), `following` (polls), `downloading`
(the file, then the remote delete). This module is the lifecycle and the one owner of every
task, so that a stop cancels all of them: job tasks, deletes, batch rounds, budget pumps.

Money rules, in short (see submitting.py for the detail):
1. a job row exists (pending) before any paid call, is claimed as `submitting` before the
   queue request, and the remote id is written the moment it arrives;
2. a submit that may have reached the server is never retried: the job becomes `unknown`;
3. remote media is deleted only after the local file is whole, and only when asked;
4. prices are the front ends' business (quote before add); the engine records them;
5. re-queue makes a new job; front ends confirm it with its price first.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tui.config import machine_name
from tui.engine.balance import BalanceWatch
from tui.engine.batchpoll import BatchPoller
from tui.engine.budget import Priority, RequestBudget
from tui.engine.catalog import Catalog
from tui.engine.clock import Clock
from tui.engine.downloading import Downloader
from tui.engine.events import AllSettled, BudgetChanged, EngineEvent, JobChanged, Notice
from tui.engine.following import Follower
from tui.engine.leases import LEASE_S, RENEW_EVERY, Leases
from tui.engine.schedule import PollPolicy
from tui.engine.settle import Settler
from tui.engine.sharedbudget import budget_for
from tui.engine.steps import FOLLOWED, STOP, Step
from tui.engine.submitting import Submitter
from tui.errors import EXIT_USAGE, WanError
from tui.jobs import Job, JobRequest, JobState, price_key
from tui.providers.base import (
    NotFound,
    Outcome,
    Provider,
    ProviderError,
    Quote,
    RateInfo,
    Unsupported,
)
from tui.store import Claim, ConnectionLost, LeaseLost, Store

log = logging.getLogger("wan_tui.engine")


class EngineError(WanError):
    """A request to the engine that cannot be carried out (one line for a human)."""

    exit_status = EXIT_USAGE  # no such job, wrong state: the user asked for something else


class Engine:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        *,
        output_dir: Path,
        delete_after_download: bool = False,
        write_sidecars: bool = True,
        max_active: int = 200,
        follow: bool = True,
        clock: Clock | None = None,
        policy: PollPolicy | None = None,
        rng: random.Random | None = None,
        rescan_s: float = 5.0,
        name: str | None = None,
        lease_s: float = LEASE_S,
    ) -> None:
        self.store = store
        # Which jobs are this engine's: leases under its name (tui/engine/leases.py).
        self.leases = Leases(store, name or machine_name(), lease_s=lease_s)
        self.providers = dict(providers)
        self.output_dir = output_dir
        self.delete_after_download = delete_after_download
        self.write_sidecars = write_sidecars  # NAME.json beside each video (tui.media.recipe)
        self.follow = follow  # False: submit and stop once the remote id is saved
        self.clock = clock or Clock()
        self.policy = policy or PollPolicy()
        self.rng = rng or random.Random()
        self.rescan_s = rescan_s
        self.catalog = Catalog(store, self.providers, self.clock)
        self.halted: dict[str, str] = {}  # provider → why we stopped submitting to it
        # False once a stop has begun: no new paid call starts after that.
        self.accepting_submits = False
        self.submitter = Submitter(self)
        self.follower = Follower(self)
        self.downloader = Downloader(self)
        self.balances = BalanceWatch(self)
        self.settler = Settler(self)
        self._listeners: list[Callable[[EngineEvent], None]] = []
        self._tasks: dict[int, asyncio.Task[bool]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._active_slots = asyncio.Semaphore(max_active)
        self._idle = asyncio.Event()
        self._idle.set()
        self._running = False
        self._settled_counts: Counter[str] = Counter()
        self._broken: set[int] = set()  # jobs whose task hit a bug: resumed on restart only
        self._parked: dict[int, float] = {}  # job id → when its task here ended
        self.budgets: dict[tuple[str, str], RequestBudget] = {}
        self._quotes: dict[tuple[object, ...], Quote] = {}
        self.batch_pollers: dict[str, BatchPoller] = {}
        for name, provider in self.providers.items():
            provider.rate_observer = self._rate_observer(name)
            for rate_class, limit in provider.default_limits_per_minute.items():
                # Shared with the key's other engines on a team's database (sharedbudget).
                self.budgets[(name, rate_class)] = budget_for(
                    store, name, provider, rate_class, limit, self.clock,
                    on_change=self._budget_listener(name, rate_class))
            if provider.batch_poll:
                self.batch_pollers[name] = BatchPoller(self, provider)

    # ------------------------------------------------------------ events

    def subscribe(self, listener: Callable[[EngineEvent], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, event: EngineEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a front end's bug must not stop the jobs
                log.exception("event listener failed")

    def notice(self, level: str, message: str, job_id: int | None = None) -> None:
        log.log(logging.ERROR if level == "error" else logging.INFO, message)
        self.emit(Notice(level, message, job_id))

    def halt(self, provider: str, reason: str) -> None:
        """Stop submitting to a provider (bad key, no balance): say why once."""
        if provider not in self.halted:
            self.halted[provider] = reason
            self.notice("error", f"{provider}: {reason}. Pending jobs wait until this is fixed.")

    def _rate_observer(self, provider: str) -> Callable[[str, RateInfo], None]:
        def observe(rate_class: str, info: RateInfo) -> None:
            budget = self.budgets.get((provider, rate_class))
            if budget is not None:
                budget.observe(info)
        return observe

    def _budget_listener(self, provider: str, rate_class: str) -> Callable[[RequestBudget], None]:
        def changed(budget: RequestBudget) -> None:
            self.emit(BudgetChanged(
                provider, rate_class, budget.used, budget.limit,
                self.providers[provider].balance_usd,
                budget.blocked_until if budget.blocked_until > self.clock.now() else None,
            ))
        return changed

    def budget(self, provider: str, rate_class: str) -> RequestBudget:
        return self.budgets[(provider, rate_class)]

    async def spend(self, provider: str, rate_class: str, priority: Priority) -> None:
        """Wait for a slot in the provider's request budget (higher priority first)."""
        budget = self.budgets.get((provider, rate_class))
        if budget is not None:
            await budget.acquire(priority)

    # ------------------------------------------------------------ what the workers share

    @property
    def polls(self) -> Counter[int]:
        return self.follower.polls

    def followed_jobs(self, provider: str) -> list[Job]:
        return self.follower.followed_jobs(provider)

    def deliver_news(self, job_id: int, outcome: Outcome | ProviderError) -> None:
        self.follower.deliver_news(job_id, outcome)

    def destination(self, job: Job) -> Path:
        return self.downloader.destination(job)

    async def transition(self, job: Job, new: JobState, detail: str = "", **fields: object
                         ) -> Job | None:
        """Commit a state change if the job is still as we last saw it, then announce it."""
        updated = await self.store.transition(job.id, new, detail, expect={job.state}, **fields)
        if updated is None:
            return None
        log.info("job %s: %s -> %s %s", job.id, job.state.value, new.value, detail)
        self.emit(JobChanged(updated, job.state, detail))
        if new.final:
            self._settled_counts[new] += 1
        return updated

    # ------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._running

    async def start(self, *, resume: bool = True) -> None:
        """Take the leases of the jobs this engine follows and resume them: a submit that
        was in flight when their last engine stopped becomes `unknown`, the rest continue.
        Without `resume`, follow only the jobs added from now on (benchmarks, tests)."""
        self._running = True
        self.accepting_submits = True
        await self._take(await self.leases.open(str(self.output_dir), resume=resume))
        if self.leases.shared:
            self.spawn(self._keep_leases(), "service-leases")
        if resume:
            await self._finish_pending_deletes()
            # The providers' own word on money: what each key may spend, and which unknown
            # jobs their ledgers settle (both read in the background; submits wait for the
            # first balance read themselves).
            self.spawn(self.balances.read_all(), "service-balance")
            self.spawn(self.settler.run(), "service-settle")
        if resume and self.rescan_s > 0:
            self.spawn(self._rescan(), "service-rescan")

    async def _take(self, claims: Iterable[Claim]) -> None:
        """Start following newly claimed jobs. A submit on the wire when the job's last
        engine died or stalled may have been charged: `unknown`, never sent again."""
        for claim in claims:
            if claim.state != JobState.SUBMITTING:
                self._launch(claim.job_id)
                continue
            job = await self.store.get(claim.job_id)
            if job is None:
                continue
            who = (f"engine {claim.previous} stopped answering" if claim.previous
                   else "wan-tui stopped")
            await self.transition(
                job, JobState.UNKNOWN,
                f"the submit was in flight when {who}: it may have been charged. "
                "Not resubmitted; check the provider, then cancel or re-queue")

    async def _keep_leases(self) -> None:
        """The heartbeat (a team's history): renew every lease each third of a lease; a
        job another engine adopted meanwhile (this one stalled or was cut off) is no
        longer followed here."""
        every = self.leases.lease_s * RENEW_EVERY
        while self._running:
            await self.clock.sleep(every)
            try:
                lost = await self.leases.renew()
            except Exception:  # the database is away: the next beat tries again
                log.exception("renewing leases")
                continue
            for job_id in sorted(lost):
                task = self._tasks.get(job_id)
                if task is not None:
                    task.cancel()
                self._adopted_elsewhere(job_id, None)

    def _adopted_elsewhere(self, job_id: int, owner: str | None) -> None:
        """Say that another engine follows this job now (found by the heartbeat, or by a
        fenced write refused)."""
        who = f"engine {owner}" if owner else "another engine"
        self.notice("info", f"job {job_id}: {who} adopted it while this one was away; it "
                    "follows and downloads it now", job_id)

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A background task the engine owns: cancelled by stop(), awaited by wait_idle()
        unless it is a service loop (rescan, inbox) that never ends by itself."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _finish_pending_deletes(self) -> None:
        """Deletes promised before a crash: the files are whole (the rows say done)."""
        for job in await self.store.pending_remote_deletes():
            provider = self.providers.get(job.provider)
            if provider is not None and provider.configured:
                self.spawn(self.downloader.delete_after_download(job, provider),
                           f"delete-{job.id}")

    async def _rescan(self) -> None:
        # Another process (a `batch`, a client window) may add pending jobs.
        while self._running:
            await self.clock.sleep(self.rescan_s)
            await self.rescan()

    async def rescan(self) -> None:
        """Claim and start the jobs this engine should follow that have no task here:
        added by another process, adopted from an engine whose lease ran out, or settled
        back into following by `wan-tui resolve`."""
        try:
            if self._running:
                await self._take(await self.leases.claim())
            for job_id, state, updated_at in await self.store.active_heads():
                if (job_id in self._tasks or job_id in self._broken
                        or not self.leases.holds(job_id)):
                    continue
                if state == JobState.PENDING or (
                        state != JobState.SUBMITTING
                        and updated_at > self._parked.get(job_id, float("-inf"))):
                    # Pending: new. Other active states: only when something else changed the
                    # row after this engine last let go of it (`wan-tui resolve`); a job it
                    # parked itself (a full disk) waits for the next start.
                    self._launch(job_id)
        except Exception:
            log.exception("rescan failed")

    async def stop(self, *, grace_s: float = 30.0, force: asyncio.Event | None = None
                   ) -> list[Job]:
        """Stop following jobs (they stay active in the store and resume next time).

        A submit on the wire is allowed to finish (up to `grace_s`, or until `force` is
        set: a second ctrl-c), so its id is written down. One still on the wire after that
        is cut off and its job becomes `unknown`: those jobs are returned.
        """
        self._running = False
        self.accepting_submits = False
        lost: list[Job] = []
        in_flight = list(self.submitter.in_flight)
        if in_flight:
            settled = asyncio.ensure_future(asyncio.wait(in_flight))
            waits: set[asyncio.Future[Any]] = {settled}
            if force is not None:
                waits.add(asyncio.ensure_future(force.wait()))
            await asyncio.wait(waits, timeout=grace_s,
                                            return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
            lost = await self.submitter.abandon()
        tasks = list(self._tasks.values()) + list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for poller in self.batch_pollers.values():
            await poller.aclose()
        for budget in self.budgets.values():
            await budget.aclose()
        if self.store.fence_name is not None:
            try:
                await self.leases.close()
            except Exception:  # the database is away: the heartbeat's age says it instead
                log.exception("could not record the engine's stop")
        return lost

    async def wait_idle(self) -> None:
        """Until no job task and no promised remote delete is left."""
        while True:
            await self._idle.wait()
            chores = [t for t in self._background if not t.get_name().startswith("service-")]
            if not chores:
                return
            await asyncio.gather(*chores, return_exceptions=True)

    @property
    def active_count(self) -> int:
        return len(self._tasks)

    def parked_ids(self) -> set[int]:
        """Jobs whose task here ended (settled, or parked: a full disk, a halted
        provider); intersect with the active jobs to find the parked ones."""
        return set(self._parked) - set(self._tasks)

    async def resume_parked(self) -> None:
        """Start again every active job this engine parked (`wan-tui watch` asks: the
        user may have fixed the folder)."""
        self._parked.clear()
        await self.rescan()

    def _launch(self, job_id: int) -> None:
        if not self._running or job_id in self._tasks or not self.leases.holds(job_id):
            return
        task = asyncio.get_running_loop().create_task(self._drive(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task
        self._idle.clear()
        task.add_done_callback(  # job_id: this call's own
            lambda t: self._task_done(job_id, not t.cancelled() and t.exception() is None
                                      and t.result()))

    def _task_done(self, job_id: int, settled: bool = False) -> None:
        self._tasks.pop(job_id, None)
        if settled:
            self.leases.drop(job_id)
        self._parked[job_id] = self.store.now()
        self.follower.forget(job_id)
        if not self._tasks:
            self._idle.set()
            if self._running and self._settled_counts:
                self.emit(AllSettled(self._settled_counts[JobState.DONE],
                                     sum(self._settled_counts.values())
                                     - self._settled_counts[JobState.DONE]))
                self._settled_counts.clear()

    async def _drive(self, job_id: int) -> bool:
        """A job's one task: take the step its state calls for until there is none. True
        when the job is no longer this engine's (settled, or its lease lost)."""
        acquired = False
        try:
            while True:
                try:
                    job = await self.store.get(job_id)
                    if job is None or not job.state.active:
                        return True
                    step: Step
                    if job.state == JobState.PENDING:
                        if not acquired:
                            await self._active_slots.acquire()
                            acquired = True
                        step = await self.submitter.submit(job)
                    elif job.state == JobState.SUBMITTING:
                        return False  # another process is submitting it (we hold no claim)
                    elif not self.follow:
                        return False
                    elif job.state in FOLLOWED:
                        step = await self.follower.follow(job)
                    else:
                        step = await self.downloader.download(job, None)
                except ConnectionLost as lost:
                    # A COMMIT that got no answer, or a server away for longer than the
                    # store waits (a restart): not a bug. Go on from what the history says
                    # once it answers again.
                    log.warning("job %s: %s; looking again", job_id, lost)
                    await asyncio.sleep(1.0)
                    continue
                if step is STOP:
                    return False
        except asyncio.CancelledError:
            raise
        except LeaseLost as lost:  # stalled or cut off past the lease: nothing was written
            log.warning("job %s: %s", job_id, lost)
            self.leases.drop(job_id)
            self.leases.lost += 1
            self._adopted_elsewhere(job_id, lost.owner)
            return True
        except Exception as exc:  # a bug must not take the other jobs down
            log.exception("job %s: unexpected error", job_id)
            self._broken.add(job_id)  # not relaunched by rescan: it would fail the same way
            self.notice("error", f"job {job_id}: internal error ({exc}); it resumes on restart",
                        job_id)
            return False
        finally:
            if acquired:
                self._active_slots.release()

    # ------------------------------------------------------------ public actions

    async def add(self, requests: Sequence[JobRequest],
                  quotes: Sequence[Quote | float | None] | None = None, *,
                  sources: Sequence[int | None] | None = None) -> list[Job]:
        """Record jobs as pending (one commit), then start them. `quotes` are the prices
        the user saw (a float is a real quote; a Quote says whether it was an estimate);
        `sources` the jobs they were made from (variations), if any."""
        quotes = list(quotes) if quotes is not None else [None] * len(requests)
        usd = [q.usd if isinstance(q, Quote) else q for q in quotes]
        estimates = [isinstance(q, Quote) and q.estimate for q in quotes]
        jobs = await self.store.add_jobs(requests, usd, cost_is_estimate=estimates,
                                         sources=sources)
        for job in jobs:
            self.emit(JobChanged(job, None, "recorded"))
        if self._running:
            await self._take(await self.leases.claim([job.id for job in jobs]))
        return jobs

    async def quote(self, req: JobRequest) -> Quote:
        """The price of a request. Identical price shapes are asked once per engine:
        quotes spend the same budget as submits."""
        key = price_key(req)
        if key not in self._quotes:
            provider = self.catalog.provider(req.provider)
            if provider.can_quote:
                await self.spend(req.provider, "queue", 0.0)
            self._quotes[key] = await provider.quote(req)
        return self._quotes[key]

    async def cancel(self, job_id: int) -> Job:
        """Stop tracking a job. Refused while its paid submit is on the wire."""
        job = await self.get(job_id)
        if job.state == JobState.SUBMITTING:
            raise EngineError(f"job {job_id} is being submitted right now; try again in a moment")
        if job.state.final and job.state != JobState.UNKNOWN:
            raise EngineError(f"job {job_id} is already {job.state}")
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            job = await self.get(job_id)
        detail = "cancelled by you: no longer tracked"
        if job.remote_id and job.state != JobState.PENDING:
            detail += " (the provider may still finish and charge for it)"
        updated = await self.transition(job, JobState.CANCELLED, detail)
        if updated is None:
            raise EngineError(f"job {job_id} changed while cancelling; look again")
        self.leases.drop(job_id)  # settled: nothing more to renew
        return updated

    async def delete_remote(self, job_id: int) -> Job:
        """Delete the provider's copy. Callers confirm first when no local copy exists."""
        job = await self.get(job_id)
        if not job.remote_id:
            raise EngineError(f"job {job_id} has no remote id: nothing to delete")
        if job.remote_deleted:
            raise EngineError(f"job {job_id}'s remote media is already deleted")
        provider = self._provider(job)
        if not provider.can_delete:
            raise EngineError(f"{provider.label} has no delete endpoint: its videos expire by "
                              "themselves")
        if job.state.active:
            job = await self.cancel(job_id)
        try:
            await self.spend(job.provider, "retrieve", 10.0)
            await provider.delete(job)
        except NotFound:
            pass  # already gone: the outcome the user asked for
        except Unsupported as err:
            raise EngineError(str(err)) from None
        except ProviderError as err:
            raise EngineError(f"delete failed: {err}") from None
        return await self.store.update(job.id, event="remote media deleted", remote_deleted=True)

    async def requeue(self, job_id: int, quote: Quote | float | None = None) -> Job:
        """A new paid job with the same request (the caller showed the price first)."""
        job = await self.get(job_id)
        if job.state.active:
            raise EngineError(f"job {job_id} is still {job.state}; cancel it before re-queueing")
        new = await self.add([job.request], [quote])
        await self.store.update(job.id, event=f"re-queued as job {new[0].id}")
        return new[0]

    async def get(self, job_id: int) -> Job:
        job = await self.store.get(job_id)
        if job is None:
            raise EngineError(f"no job {job_id}; `wan-tui list` shows the ids")
        return job

    def _provider(self, job: Job) -> Provider:
        try:
            return self.providers[job.provider]
        except KeyError:
            raise EngineError(f"job {job.id} uses unknown provider {job.provider!r}") from None
