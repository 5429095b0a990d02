"""Following a submitted job: when to poll, what each answer means.

Polls are spaced by the server's estimate (or the model's learned run time), share the
provider's request budget, and back off with jitter on errors. A batch-capable provider
(AceData) answers for many jobs in one round; such answers arrive here as "news".
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING

from tui.engine.events import JobChanged
from tui.engine.schedule import (
    backoff_delay,
    learned_estimate,
    learned_start,
    likelihood_done,
    next_poll_delay,
)
from tui.engine.steps import FOLLOWED, STOP, Step
from tui.jobs import Job, JobState
from tui.providers.base import (
    AuthError,
    Failed,
    Gone,
    InsufficientBalance,
    NotConfigured,
    Outcome,
    Processing,
    ProviderError,
    RateLimited,
    Ready,
)

if TYPE_CHECKING:
    from tui.engine.engine import Engine


class Follower:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.polls: Counter[int] = Counter()  # status requests per job, this process
        self._following: dict[int, Job] = {}
        self._news: dict[int, asyncio.Event] = {}
        self._latest: dict[int, Outcome | ProviderError] = {}

    # ------------------------------------------------------------ news from batch rounds

    def _news_event(self, job_id: int) -> asyncio.Event:
        return self._news.setdefault(job_id, asyncio.Event())

    def deliver_news(self, job_id: int, outcome: Outcome | ProviderError) -> None:
        """A batch round learned about a job that was not asking: wake it with the answer."""
        if job_id in self._following:
            self._latest[job_id] = outcome
            self._news_event(job_id).set()

    def followed_jobs(self, provider: str) -> list[Job]:
        return [j for j in self._following.values() if j.provider == provider]

    def forget(self, job_id: int) -> None:
        self._news.pop(job_id, None)
        self._latest.pop(job_id, None)
        self._following.pop(job_id, None)

    # ------------------------------------------------------------ the poll loop

    async def _history(self, job: Job) -> tuple[list[float], float | None]:
        """Past run times of this model, and the estimate they give when the provider
        reports none of its own."""
        engine = self.engine
        durations = await engine.store.learned_durations(job.provider, job.model)
        if engine.providers[job.provider].reports_estimate:
            return durations, None
        return durations, learned_estimate(durations, engine.policy.min_history)

    async def follow(self, job: Job) -> Step:
        engine = self.engine
        policy = engine.policy
        durations, learned = await self._history(job)
        if learned and not job.estimate_s:
            job = await engine.store.update(job.id, estimate_s=learned)
        polls = 0
        errors = 0
        started = job.submitted_at or job.created_at
        self._following[job.id] = job
        while True:
            estimate = job.estimate_s or learned
            elapsed = engine.clock.now() - started
            start = learned_start(policy, durations, estimate)
            delay = next_poll_delay(policy, elapsed, estimate, polls, start)
            if errors:
                delay = max(delay, backoff_delay(policy, errors, None, engine.rng))
            news = self._news_event(job.id)
            outcome: Outcome | ProviderError | None = None
            if await engine.clock.wait(news, delay):
                news.clear()
                outcome = self._latest.pop(job.id, None)
            if outcome is None:
                outcome = await self._poll(job, likelihood_done(elapsed + delay, estimate))
            polls += 1
            self.polls[job.id] += 1
            if not (job.estimate_s or learned
                    or engine.providers[job.provider].reports_estimate):
                # Other jobs of this model may have finished since: a job already running
                # gets the learned estimate (and an ETA) as soon as there is history.
                durations, learned = await self._history(job)
                if learned:
                    job = await engine.store.update(job.id, estimate_s=learned)
                    self._following[job.id] = job
                    engine.emit(JobChanged(job))
            if isinstance(outcome, ProviderError):
                errors, step = await self._poll_error(job, outcome, errors)
                if step is STOP:
                    return STOP
                continue
            errors = 0
            if isinstance(outcome, Processing):
                job = await self._progress(job, outcome)
                if job.state not in FOLLOWED:
                    return None
                self._following[job.id] = job
                continue
            self._following.pop(job.id, None)
            return await self._finish(job, outcome)

    async def _poll(self, job: Job, priority: float) -> Outcome | ProviderError:
        engine = self.engine
        batch = engine.batch_pollers.get(job.provider)
        if batch is not None:
            return await batch.poll(job, priority)
        await engine.spend(job.provider, "retrieve", priority)
        try:
            return await engine.providers[job.provider].poll(job)
        except ProviderError as err:
            return err

    async def _poll_error(self, job: Job, err: ProviderError, errors: int) -> tuple[int, Step]:
        engine = self.engine
        policy = engine.policy
        if isinstance(err, NotConfigured):
            engine.halt(job.provider, str(err))
            return errors, STOP
        if isinstance(err, RateLimited):
            engine.budget(job.provider, "retrieve").block_for(
                err.retry_after or policy.backoff_base_s)
            return errors, None  # the budget waits; a 429 says nothing about the job
        if isinstance(err, AuthError | InsufficientBalance):
            engine.notice("error", f"job {job.id}: {err}", job.id)
            return max(errors, 3), None  # a paid job is never failed for a key problem
        errors += 1
        if errors >= policy.max_consecutive_errors:
            await engine.transition(job, JobState.FAILED, f"gave up after {errors} errors: {err}",
                                    error=str(err), finished_at=engine.clock.now())
            return errors, STOP
        if errors == 3:
            engine.notice("warning", f"job {job.id}: {err} (retrying with backoff)", job.id)
        await engine.store.update(job.id, event=f"poll error {errors}: {err}")
        return errors, None

    async def _progress(self, job: Job, outcome: Processing) -> Job:
        engine = self.engine
        fields: dict[str, object] = {}
        if outcome.estimate_s and outcome.estimate_s != job.estimate_s:
            fields["estimate_s"] = outcome.estimate_s
        if outcome.progress is not None:
            fields["progress"] = round(outcome.progress, 3)
        if job.state == JobState.QUEUED and not outcome.queued:
            moved = await engine.transition(job, JobState.PROCESSING, "the provider started it",
                                            started_at=engine.clock.now(), **fields)
            return moved or await engine.get(job.id)
        if fields:
            job = await engine.store.update(job.id, **fields)
            engine.emit(JobChanged(job))
        return job

    async def _finish(self, job: Job, outcome: Outcome) -> Step:
        engine = self.engine
        now = engine.clock.now()
        if isinstance(outcome, Ready):
            moved = await engine.transition(
                job, JobState.DOWNLOADING, "finished on the provider; downloading",
                ready_at=now, result_url=outcome.url or job.result_url,
            )
            if moved is None:
                if outcome.stream is not None:
                    await outcome.stream.aclose()
                return STOP
            return await engine.downloader.download(moved, outcome)
        if isinstance(outcome, Failed):
            cost = 0.0 if outcome.refunded else job.cost_usd
            await engine.transition(job, JobState.FAILED, f"{outcome.code}: {outcome.message}",
                                    error=f"{outcome.code}: {outcome.message}",
                                    finished_at=now, cost_usd=cost)
            return STOP
        assert isinstance(outcome, Gone)
        await engine.transition(job, JobState.EXPIRED, outcome.message, error=outcome.message,
                                finished_at=now)
        return STOP
