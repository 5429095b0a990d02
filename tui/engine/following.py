"""Following a submitted job: when to poll, what each answer means.

Polls are placed by the model's run-time distribution (schedule.py: the server's estimate
as a prior, the finished jobs' run times as evidence), which one job's answer fills for all
its siblings (runtimes.py); they share the provider's request budget, where a short budget
goes to the job most likely finished, and back off with jitter on errors. A batch-capable
provider (AceData) answers for many jobs in one round; such answers arrive here as "news".
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tui.engine.budget import Priority
from tui.engine.events import JobChanged
from tui.engine.runtimes import RunTimeMemory
from tui.engine.schedule import RunTimes, backoff_delay, next_poll_at, request_worth
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
    from tui.engine.parts import EngineParts


class Follower:
    def __init__(self, engine: EngineParts) -> None:
        self.engine = engine
        self.polls: Counter[int] = Counter()  # status requests per job, this process
        self.runtimes = RunTimeMemory()  # per model: estimate, past run times, who probes
        # provider -> job id -> the job as last seen: a poll asks how many share its
        # provider's budget, and with 1 000 jobs a scan of them all per poll adds up.
        self._following: dict[str, dict[int, Job]] = {}
        self._news: dict[int, asyncio.Event] = {}
        self._latest: dict[int, Outcome | ProviderError] = {}
        # Jobs whose latest polls failed: (errors in a row, the last one), for the dashboard.
        self.failing: dict[int, tuple[int, str]] = {}

    # ------------------------------------------------------------ news from batch rounds

    def _news_event(self, job_id: int) -> asyncio.Event:
        return self._news.setdefault(job_id, asyncio.Event())

    def deliver_news(self, job_id: int, outcome: Outcome | ProviderError) -> None:
        """A batch round learned about a job that was not asking: wake it with the answer."""
        if self._followed(job_id):
            self._latest[job_id] = outcome
            self._news_event(job_id).set()

    def followed_jobs(self, provider: str) -> list[Job]:
        return list(self._following.get(provider, {}).values())

    def _followed(self, job_id: int) -> bool:
        return any(job_id in jobs for jobs in self._following.values())

    def _track(self, job: Job) -> None:
        self._following.setdefault(job.provider, {})[job.id] = job

    def _untrack(self, job_id: int) -> None:
        for jobs in self._following.values():
            jobs.pop(job_id, None)

    def forget(self, job_id: int) -> None:
        self.failing.pop(job_id, None)
        self._news.pop(job_id, None)
        self._latest.pop(job_id, None)
        self._untrack(job_id)

    # ------------------------------------------------------------ the poll loop

    async def _learn_history(self, job: Job, again: bool = False) -> Job:
        """Read this model's past run times (once per engine, or `again`); a provider that
        reports no estimate gets the learned P80 recorded on the job (the front ends show
        it as an ETA)."""
        engine = self.engine
        key = (job.provider, job.model)
        if again or not self.runtimes.has_history(key):
            self.runtimes.remember_history(
                key, await engine.store.learned_durations(job.provider, job.model),
                replace=again)
        if job.estimate_s or engine.providers[job.provider].reports_estimate:
            return job
        learned = self.runtimes.learned_p80(key, engine.policy.min_history)
        if not learned:
            return job
        job = await engine.store.update(job.id, estimate_s=learned)
        if self._followed(job.id):
            self._track(job)
        engine.emit(JobChanged(job))
        return job

    def _replan_siblings(self, job: Job) -> None:
        # The model's run times just became known (or the probe answered without them): its
        # other jobs wake with no outcome and plan their next poll again.
        for other in self._following.get(job.provider, {}).values():
            if other.id != job.id and other.model == job.model:
                self._news_event(other.id).set()

    def _request_worth(self, provider: str) -> float:
        """Seconds of delay a status request is worth: more when many jobs share a tight
        retrieve budget (a batch-polling provider asks for all of them in one request)."""
        engine = self.engine
        budget = engine.budgets.get((provider, "retrieve"))
        if budget is None:
            return engine.policy.request_worth_s
        sharing = 1 if provider in engine.batch_pollers else len(self._following.get(provider, ()))
        return request_worth(engine.policy, sharing, budget.limit)

    async def follow(self, job: Job) -> Step:
        engine = self.engine
        policy = engine.policy
        job = await self._learn_history(job)
        key = (job.provider, job.model)
        polls = 0
        errors = 0
        since = 0.0  # seconds after the submit when a poll last found the job running
        waited_for_probe = False
        probing = False
        started = job.submitted_at or job.created_at
        self._track(job)
        while True:
            now = engine.clock.now()
            news = self._news_event(job.id)
            runs = self.runtimes.runs(key, job.estimate_s, known_before=started)
            due = started + next_poll_at(policy, runs, since, polls,
                                         self._request_worth(job.provider))
            if runs is None and polls == 0 and not waited_for_probe:
                # Nothing known about the model: one job asks early, its siblings wait for
                # that answer (it wakes them) and then plan their first poll from it.
                sibling = self.runtimes.probe(key, due, now, policy.max_interval_s)
                probing = sibling is None
                if sibling is not None:
                    waited_for_probe = True
                    await engine.clock.wait(news, sibling + policy.max_interval_s - now)
                    continue
            delay = max(0.0, due - now)
            if errors:
                delay = max(delay, backoff_delay(policy, errors, None, engine.rng))
            outcome: Outcome | ProviderError | None = None
            if await engine.clock.wait(news, delay):
                news.clear()
                outcome = self._latest.pop(job.id, None)
                if outcome is None:
                    continue  # a sibling's answer taught us the run times: plan again
            if outcome is None:
                outcome = await self._poll(job, self._priority(runs, started, since))
            polls += 1
            self.polls[job.id] += 1
            if probing:
                probing = False
                if isinstance(outcome, Processing):
                    self.runtimes.learn_estimate(key, outcome.estimate_s)
                self.runtimes.probe_answered(key)
                self._replan_siblings(job)
            if not (job.estimate_s or engine.providers[job.provider].reports_estimate):
                # Other jobs of this model may have finished since (here or in another
                # process): a job running without an estimate re-reads the history, and
                # plans (and shows an ETA) from it as soon as there is some.
                job = await self._learn_history(job, again=True)
            if isinstance(outcome, ProviderError):
                errors, step = await self._poll_error(job, outcome, errors)
                if step is STOP:
                    self.failing.pop(job.id, None)
                    return STOP
                if errors:
                    self.failing[job.id] = (errors, str(outcome))
                continue
            errors = 0
            self.failing.pop(job.id, None)
            if isinstance(outcome, Processing):
                since = max(since, engine.clock.now() - started)
                if self.runtimes.learn_estimate(key, outcome.estimate_s):
                    self._replan_siblings(job)
                job = await self._progress(job, outcome)
                if job.state not in FOLLOWED:
                    return None
                self._track(job)
                continue
            self._untrack(job.id)
            if isinstance(outcome, Ready):
                now = engine.clock.now()
                self.runtimes.learn_run(key, now - started, now)
            return await self._finish(job, outcome)

    def _priority(self, runs: RunTimes | None, started: float,
                  since: float) -> Callable[[], float]:
        """When the budget is short: the chance the job has finished since its last poll,
        asked again whenever a slot frees (it grows while the job waits)."""
        if runs is None:
            return lambda: 0.5
        clock = self.engine.clock
        return lambda: runs.chance_done(since, clock.now() - started)

    async def _poll(self, job: Job, priority: Priority) -> Outcome | ProviderError:
        engine = self.engine
        batch = engine.batch_pollers.get(job.provider)
        if batch is not None:
            # A round asks for every job at once: its priority is the likeliest now.
            return await batch.poll(job, priority() if callable(priority) else priority)
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
        fields: dict[str, Any] = {}  # Store.update checks the names and their values
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
