"""The engine: owns running jobs, one asyncio task per active job.

It knows nothing of Textual or of printing. Front ends (the dashboard, the headless CLI)
subscribe to its events and call its small public API.

Money rules, as implemented here:
1. a job row exists (pending) before any paid call; it is claimed as `submitting` in a
   committed write before the queue request, and the remote id is written the moment
   it arrives. A crash in between leaves `submitting`, which the next start turns into
   `unknown` -- shown, never resubmitted;
2. a submit is retried only when it certainly did not reach the server (connection
   refused, 429); a timeout, reset or 5xx after sending makes the job `unknown`;
3. remote media is deleted only after the local file is whole, and only when asked;
4. prices are the front ends' business (quote before add); the engine records them;
5. re-queue makes a new job; front ends confirm it with its price first.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from tui.engine.batchpoll import BatchPoller
from tui.engine.budget import RequestBudget
from tui.engine.catalog import Catalog
from tui.engine.clock import Clock
from tui.engine.events import AllSettled, BudgetChanged, EngineEvent, JobChanged, Notice
from tui.engine.files import TINY_VIDEO_BYTES, DownloadError, output_name, save_stream
from tui.engine.schedule import (
    PollPolicy,
    backoff_delay,
    learned_estimate,
    learned_start,
    likelihood_done,
    next_poll_delay,
)
from tui.jobs import Job, JobRequest, JobState
from tui.providers.base import (
    AuthError,
    Failed,
    Gone,
    InsufficientBalance,
    NotConfigured,
    NotFound,
    Outcome,
    Processing,
    Provider,
    ProviderError,
    Quote,
    RateInfo,
    RateLimited,
    Ready,
    Unsupported,
)
from tui.store import Store

log = logging.getLogger("wan_tui.engine")

FOLLOWED = (JobState.QUEUED, JobState.PROCESSING)
_STOP = object()  # a step's way of saying "this task has nothing more to do"


class EngineError(Exception):
    """A request to the engine that cannot be carried out (one line for a human)."""


class Engine:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        *,
        output_dir: Path,
        delete_after_download: bool = False,
        max_active: int = 200,
        follow: bool = True,
        clock: Clock | None = None,
        policy: PollPolicy | None = None,
        rng: random.Random | None = None,
        rescan_s: float = 5.0,
    ) -> None:
        self.store = store
        self.providers = dict(providers)
        self.output_dir = output_dir
        self.delete_after_download = delete_after_download
        self.follow = follow  # False: submit and stop once the remote id is saved (batch)
        self.clock = clock or Clock()
        self.policy = policy or PollPolicy()
        self.rng = rng or random.Random()
        self.rescan_s = rescan_s
        self.catalog = Catalog(store, self.providers, self.clock)
        self.polls: Counter[int] = Counter()  # status requests per job, this process
        self.halted: dict[str, str] = {}  # provider → why we stopped submitting to it
        self._listeners: list[Callable[[EngineEvent], None]] = []
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._submits: set[asyncio.Task[object]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._news: dict[int, asyncio.Event] = {}
        self._latest: dict[int, Outcome | ProviderError] = {}
        self._following: dict[int, Job] = {}
        self._active_slots = asyncio.Semaphore(max_active)
        self._download_slots = asyncio.Semaphore(4)
        self._idle = asyncio.Event()
        self._idle.set()
        self._running = False
        self._rescan_task: asyncio.Task[None] | None = None
        self._settled_counts: Counter[str] = Counter()
        self.budgets: dict[tuple[str, str], RequestBudget] = {}
        self._quotes: dict[tuple, Quote] = {}
        # One submit on the wire per provider: a crash can then leave at most one job
        # `unknown`, and the queue rate (40/min on Venice) is far below one at a time anyway.
        self._submit_locks = {name: asyncio.Lock() for name in self.providers}
        self._batch: dict[str, BatchPoller] = {}
        for name, provider in self.providers.items():
            provider.rate_observer = self._rate_observer(name)
            for rate_class, limit in provider.default_limits_per_minute.items():
                self.budgets[(name, rate_class)] = RequestBudget(
                    limit, self.clock, on_change=self._budget_listener(name, rate_class)
                )
            if provider.batch_poll:
                self._batch[name] = BatchPoller(self, provider)

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

    # ------------------------------------------------------------ lifecycle

    async def start(self, *, only: Iterable[int] | None = None) -> None:
        """Resume from the store: in-flight submits become `unknown`, the rest continue."""
        self._running = True
        wanted = set(only) if only is not None else None
        for job in await self.store.active_jobs():
            if wanted is not None and job.id not in wanted:
                continue
            if job.state == JobState.SUBMITTING:
                await self._transition(
                    job, JobState.UNKNOWN,
                    "the submit was in flight when wan-tui stopped: it may have been charged. "
                    "Not resubmitted; check the provider, then cancel or re-queue",
                )
                continue
            self._launch(job.id)
        if wanted is None:
            await self._finish_pending_deletes()
        if wanted is None and self.rescan_s > 0:
            self._rescan_task = asyncio.get_running_loop().create_task(self._rescan())

    async def _finish_pending_deletes(self) -> None:
        """Deletes promised before a crash: the files are whole (the rows say done)."""
        for job in await self.store.pending_remote_deletes():
            provider = self.providers.get(job.provider)
            if provider is not None and provider.configured:
                task = asyncio.get_running_loop().create_task(
                    self._delete_after_download(job, provider), name=f"delete-{job.id}")
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _rescan(self) -> None:
        # Another process (a `batch` while the dashboard runs) may add pending jobs.
        while self._running:
            await self.clock.sleep(self.rescan_s)
            try:
                for job in await self.store.active_jobs():
                    if job.state == JobState.PENDING and job.id not in self._tasks:
                        self._launch(job.id)
            except Exception:
                log.exception("rescan failed")

    async def stop(self, *, grace_s: float = 30.0) -> None:
        """Stop following jobs (they stay active in the store and resume next time).

        A submit on the wire is allowed to finish first, so its id is not lost.
        """
        self._running = False
        if self._rescan_task:
            self._rescan_task.cancel()
        if self._submits:
            await asyncio.wait(list(self._submits), timeout=grace_s)
        tasks = list(self._tasks.values()) + list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for poller in self._batch.values():
            await poller.aclose()

    async def wait_idle(self) -> None:
        """Until no job task and no promised remote delete is left."""
        while True:
            await self._idle.wait()
            if not self._background:
                return
            await asyncio.gather(*list(self._background), return_exceptions=True)

    @property
    def active_count(self) -> int:
        return len(self._tasks)

    def _launch(self, job_id: int) -> None:
        if not self._running or job_id in self._tasks:
            return
        task = asyncio.get_running_loop().create_task(self._drive(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task
        self._idle.clear()
        task.add_done_callback(lambda _t, jid=job_id: self._task_done(jid))

    def _task_done(self, job_id: int) -> None:
        self._tasks.pop(job_id, None)
        self._news.pop(job_id, None)
        self._latest.pop(job_id, None)
        self._following.pop(job_id, None)
        if not self._tasks:
            self._idle.set()
            if self._running and self._settled_counts:
                self.emit(AllSettled(self._settled_counts[JobState.DONE],
                                     sum(self._settled_counts.values())
                                     - self._settled_counts[JobState.DONE]))
                self._settled_counts.clear()

    # ------------------------------------------------------------ public actions

    async def add(self, requests: Sequence[JobRequest],
                  quotes: Sequence[Quote | float | None] | None = None) -> list[Job]:
        """Record jobs as pending (one commit), then start them. `quotes` are the prices
        the user saw (a float is a real quote; a Quote says whether it was an estimate)."""
        quotes = list(quotes) if quotes is not None else [None] * len(requests)
        usd = [q.usd if isinstance(q, Quote) else q for q in quotes]
        estimates = [isinstance(q, Quote) and q.estimate for q in quotes]
        jobs = await self.store.add_jobs(requests, usd, cost_is_estimate=estimates)
        for job in jobs:
            self.emit(JobChanged(job, None, "recorded"))
            self._launch(job.id)
        return jobs

    async def quote(self, req: JobRequest) -> Quote:
        """The price of a request. Identical price shapes are asked once per engine:
        quotes spend the same budget as submits."""
        key = (req.provider, req.model, req.duration, req.resolution, req.aspect_ratio,
               req.audio)
        if key not in self._quotes:
            provider = self.catalog.provider(req.provider)
            if provider.can_quote:
                await self._spend(req.provider, "queue", 0.0)
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
        updated = await self._transition(job, JobState.CANCELLED, detail)
        if updated is None:
            raise EngineError(f"job {job_id} changed while cancelling; look again")
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
            await self._spend(job.provider, "retrieve", 10.0)
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

    # ------------------------------------------------------------ the per-job task

    async def _drive(self, job_id: int) -> None:
        acquired = False
        try:
            while True:
                job = await self.store.get(job_id)
                if job is None or not job.state.active:
                    return
                if job.state == JobState.PENDING:
                    if not acquired:
                        await self._active_slots.acquire()
                        acquired = True
                    step = await self._submit(job)
                elif job.state == JobState.SUBMITTING:
                    return  # another process is submitting it (we hold no claim)
                elif not self.follow:
                    return
                elif job.state in FOLLOWED:
                    step = await self._follow(job)
                else:
                    step = await self._download(job, None)
                if step is _STOP:
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not take the other jobs down
            log.exception("job %s: unexpected error", job_id)
            self.notice("error", f"job {job_id}: internal error ({exc}); it resumes on restart",
                        job_id)
        finally:
            if acquired:
                self._active_slots.release()

    async def _transition(self, job: Job, new: JobState, detail: str = "", **fields: object
                          ) -> Job | None:
        """Commit a state change if the job is still as we last saw it, then announce it."""
        updated = await self.store.transition(job.id, new, detail, expect={job.state}, **fields)
        if updated is None:
            return None
        self.emit(JobChanged(updated, job.state, detail))
        if new.final:
            self._settled_counts[new] += 1
        return updated

    async def _spend(self, provider: str, rate_class: str, priority: float) -> None:
        budget = self.budgets.get((provider, rate_class))
        if budget is not None:
            await budget.acquire(priority)

    # ------------------------------------------------------------ submitting

    async def _submit(self, job: Job) -> object:
        provider = self.providers.get(job.provider)
        if provider is None or not provider.configured:
            reason = (f"{job.provider} is not configured: set its API key"
                      if provider is not None else f"unknown provider {job.provider!r}")
            self._halt(job.provider, reason)
            return _STOP
        async with self._submit_locks[job.provider]:
            if job.provider in self.halted:
                return _STOP
            await self._spend(job.provider, "queue", 0.0)
            claimed = await self._transition(job, JobState.SUBMITTING,
                                             "sending the paid request")
            if claimed is None:
                return _STOP  # cancelled or claimed elsewhere meanwhile
            # The call and its store write run in their own task: a stop() waits for it,
            # so a queue answer that arrives is always written down.
            call = asyncio.get_running_loop().create_task(self._submit_call(claimed, provider))
            self._submits.add(call)
            call.add_done_callback(self._submits.discard)
            return await asyncio.shield(call)

    async def _submit_call(self, job: Job, provider: Provider) -> object:
        try:
            sub = await provider.submit(job.request)
        except ProviderError as err:
            return await self._submit_refused(job, err)
        except Exception as exc:  # unknown failure after sending: assume it may be charged
            log.exception("submit of job %s", job.id)
            await self._transition(job, JobState.UNKNOWN, f"submit failed oddly ({exc}); "
                                   "it may have been charged: not resubmitted")
            return _STOP
        now = self.clock.now()
        done = await self._transition(
            job, JobState.QUEUED, f"accepted as {sub.remote_id}",
            remote_id=sub.remote_id, result_url=sub.result_url, submitted_at=now,
            cost_usd=job.quote_usd,
        )
        if done is None:
            # The row moved under us (another process?): the id must still be kept.
            await self.store.update(job.id, event=f"accepted as {sub.remote_id}",
                                    remote_id=sub.remote_id, result_url=sub.result_url,
                                    submitted_at=now)
            return _STOP
        return None

    async def _submit_refused(self, job: Job, err: ProviderError) -> object:
        if err.sent:
            await self._transition(
                job, JobState.UNKNOWN,
                f"{err} -- the request may have reached {job.provider} and been charged; "
                "not resubmitted. Check the provider, then cancel or re-queue",
                error=str(err),
            )
            return _STOP
        if isinstance(err, AuthError | InsufficientBalance | NotConfigured):
            # Every other job would be refused the same way: keep them pending, say why once.
            await self._transition(job, JobState.PENDING, f"not sent: {err}")
            self._halt(job.provider, str(err))
            return _STOP
        if err.retryable:  # 429 or a refused connection: certainly not accepted
            await self._transition(job, JobState.PENDING, f"not sent ({err}); will retry")
            budget = self.budgets.get((job.provider, "queue"))
            if isinstance(err, RateLimited) and budget is not None:
                budget.block_for(err.retry_after or self.policy.backoff_base_s)
            await self.clock.sleep(backoff_delay(self.policy, 1, err.retry_after, self.rng))
            return None
        await self._transition(job, JobState.FAILED, f"refused: {err}", error=str(err),
                               finished_at=self.clock.now())
        return _STOP

    def _halt(self, provider: str, reason: str) -> None:
        if provider not in self.halted:
            self.halted[provider] = reason
            self.notice("error", f"{provider}: {reason}. Pending jobs wait until this is fixed.")

    # ------------------------------------------------------------ following

    def _estimate(self, job: Job, learned: float | None) -> float | None:
        return job.estimate_s or learned

    async def _history(self, job: Job) -> tuple[list[float], float | None]:
        """Past run times of this model, and the estimate they give when the provider
        reports none of its own."""
        durations = await self.store.learned_durations(job.provider, job.model)
        if self.providers[job.provider].reports_estimate:
            return durations, None
        return durations, learned_estimate(durations, self.policy.min_history)

    def _news_event(self, job_id: int) -> asyncio.Event:
        return self._news.setdefault(job_id, asyncio.Event())

    def deliver_news(self, job_id: int, outcome: Outcome | ProviderError) -> None:
        """A batch round learned about a job that was not asking: wake it with the answer."""
        if job_id in self._following:
            self._latest[job_id] = outcome
            self._news_event(job_id).set()

    def followed_jobs(self, provider: str) -> list[Job]:
        return [j for j in self._following.values() if j.provider == provider]

    async def _follow(self, job: Job) -> object:
        durations, learned = await self._history(job)
        if learned and not job.estimate_s:
            job = await self.store.update(job.id, estimate_s=learned)
        polls = 0
        errors = 0
        started = job.submitted_at or job.created_at
        self._following[job.id] = job
        while True:
            estimate = self._estimate(job, learned)
            elapsed = self.clock.now() - started
            start = learned_start(self.policy, durations, estimate)
            delay = next_poll_delay(self.policy, elapsed, estimate, polls, start)
            if errors:
                delay = max(delay, backoff_delay(self.policy, errors, None, self.rng))
            woke = await self.clock.wait(self._news_event(job.id), delay)
            if woke:
                self._news_event(job.id).clear()
                outcome = self._latest.pop(job.id, None)
            else:
                outcome = None
            if outcome is None:
                outcome = await self._poll(job, likelihood_done(elapsed + delay, estimate))
            polls += 1
            self.polls[job.id] += 1
            if isinstance(outcome, ProviderError):
                errors, step = await self._poll_error(job, outcome, errors)
                if step is _STOP:
                    return _STOP
                continue
            errors = 0
            if isinstance(outcome, Processing):
                job = await self._progress(job, outcome)
                if job.state not in FOLLOWED:
                    return None
                self._following[job.id] = job
                continue
            self._following.pop(job.id, None)
            return await self._finish_poll(job, outcome)

    async def _poll(self, job: Job, priority: float) -> Outcome | ProviderError:
        if job.provider in self._batch:
            return await self._batch[job.provider].poll(job, priority)
        await self._spend(job.provider, "retrieve", priority)
        try:
            return await self.providers[job.provider].poll(job)
        except ProviderError as err:
            return err

    async def _poll_error(self, job: Job, err: ProviderError, errors: int) -> tuple[int, object]:
        if isinstance(err, NotConfigured):
            self._halt(job.provider, str(err))
            return errors, _STOP
        if isinstance(err, RateLimited):
            self.budget(job.provider, "retrieve").block_for(
                err.retry_after or self.policy.backoff_base_s)
            return errors, None  # the budget waits; a 429 says nothing about the job
        if isinstance(err, AuthError | InsufficientBalance):
            self.notice("error", f"job {job.id}: {err}", job.id)
            return max(errors, 3), None  # a paid job is never failed for a key problem
        errors += 1
        if errors >= self.policy.max_consecutive_errors:
            await self._transition(job, JobState.FAILED, f"gave up after {errors} errors: {err}",
                                   error=str(err), finished_at=self.clock.now())
            return errors, _STOP
        if errors == 3:
            self.notice("warning", f"job {job.id}: {err} (retrying with backoff)", job.id)
        await self.store.update(job.id, event=f"poll error {errors}: {err}")
        return errors, None

    async def _progress(self, job: Job, outcome: Processing) -> Job:
        fields: dict[str, object] = {}
        if outcome.estimate_s and outcome.estimate_s != job.estimate_s:
            fields["estimate_s"] = outcome.estimate_s
        if outcome.progress is not None:
            fields["progress"] = round(outcome.progress, 3)
        if job.state == JobState.QUEUED and not outcome.queued:
            moved = await self._transition(job, JobState.PROCESSING, "the provider started it",
                                           started_at=self.clock.now(), **fields)
            return moved or await self.get(job.id)
        if fields:
            job = await self.store.update(job.id, **fields)
            self.emit(JobChanged(job))
        return job

    async def _finish_poll(self, job: Job, outcome: Outcome) -> object:
        now = self.clock.now()
        if isinstance(outcome, Ready):
            moved = await self._transition(
                job, JobState.DOWNLOADING, "finished on the provider; downloading",
                ready_at=now, result_url=outcome.url or job.result_url,
            )
            if moved is None:
                if outcome.stream is not None:
                    await outcome.stream.aclose()
                return _STOP
            return await self._download(moved, outcome)
        if isinstance(outcome, Failed):
            cost = 0.0 if outcome.refunded else job.cost_usd
            await self._transition(job, JobState.FAILED, f"{outcome.code}: {outcome.message}",
                                   error=f"{outcome.code}: {outcome.message}",
                                   finished_at=now, cost_usd=cost)
            return _STOP
        assert isinstance(outcome, Gone)
        await self._transition(job, JobState.EXPIRED, outcome.message, error=outcome.message,
                               finished_at=now)
        return _STOP

    # ------------------------------------------------------------ downloading

    def destination(self, job: Job) -> Path:
        return self.output_dir / output_name(job.id, job.model, job.prompt, job.created_at)

    async def _download(self, job: Job, ready: Ready | None) -> object:
        provider = self.providers[job.provider]
        stream = ready.stream if ready else None
        dest = self.destination(job)
        last_error = ""
        async with self._download_slots:
            for attempt in range(1, self.policy.download_attempts + 1):
                try:
                    if stream is None:
                        if not job.result_url:  # fetched through the API, not a result URL
                            await self._spend(job.provider, "retrieve", 2.0)
                        stream = await provider.open_download(job)
                    saved = await save_stream(stream, dest)
                    break
                except NotFound:
                    await self._transition(job, JobState.EXPIRED,
                                           "the video expired before it could be downloaded",
                                           error="expired before download",
                                           finished_at=self.clock.now())
                    return _STOP
                except (DownloadError, ProviderError) as err:
                    stream = None
                    last_error = str(err)
                    await self.store.update(
                        job.id, event=f"download attempt {attempt} failed: {err}; fetching again")
                    retry_after = err.retry_after if isinstance(err, ProviderError) else None
                    await self.clock.sleep(backoff_delay(self.policy, attempt, retry_after,
                                                         self.rng))
            else:
                # Never give up on a paid video: go back to polling, which finds it again.
                await self._transition(job, JobState.QUEUED,
                                       f"download failed {self.policy.download_attempts} times "
                                       f"({last_error}); will try again later")
                await self.clock.sleep(self.policy.max_interval_s)
                return None
        detail = f"saved {saved.size} bytes to {saved.path}"
        if saved.size < TINY_VIDEO_BYTES:
            detail += " -- suspiciously small: the provider may have moderated it"
        delete = self.delete_after_download and provider.can_delete
        done = await self._transition(job, JobState.DONE, detail, file=str(saved.path),
                                      bytes=saved.size, sha256=saved.sha256,
                                      finished_at=self.clock.now(), progress=1.0,
                                      delete_pending=delete)
        if done is not None and delete:
            await self._delete_after_download(done, provider)
        return _STOP

    async def _delete_after_download(self, job: Job, provider: Provider) -> None:
        # Only reached with a DONE row: the file is renamed, fsynced and checked.
        for attempt in range(1, self.policy.download_attempts + 1):
            try:
                await self._spend(job.provider, "retrieve", 1.0)
                await provider.delete(job)
                break
            except NotFound:
                break  # already gone: what we wanted
            except ProviderError as err:
                if not err.retryable or attempt == self.policy.download_attempts:
                    # delete_pending stays set: the next start tries again.
                    self.notice("warning", f"job {job.id}: could not delete the remote copy "
                                f"({err}); will retry on the next start", job.id)
                    return
                await self.clock.sleep(backoff_delay(self.policy, attempt, err.retry_after,
                                                     self.rng))
        updated = await self.store.update(job.id, event="remote copy deleted after download",
                                          remote_deleted=True, delete_pending=False)
        self.emit(JobChanged(updated))
