"""The CLI commands that follow jobs or hand them to the engine: watch, batch, submit,
the one-job actions, and `engine status|stop`. No Textual here.

Every command opens the history as a client first and becomes the engine only if none
runs (tui/engine/host.py): with an engine running elsewhere, a command records jobs or
posts a request and that engine carries it out.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from tui import format as fmt
from tui.jobs import Job, JobState

SUMMARY_STATES_BAD = (JobState.FAILED, JobState.EXPIRED, JobState.UNKNOWN)
EXIT_OK, EXIT_FAIL, EXIT_STOPPED = 0, 1, 130
# A background engine waits this long for the lock: the window that started it may still be
# waiting for a paid submit's answer (bounded by that request's deadline) before letting go.
BACKGROUND_PATIENCE_S = 90.0


def say(message: str, *, err: bool = False) -> None:
    """Print one line; a terminal that went away (SIGHUP) is not an error."""
    try:
        print(message, file=sys.stderr if err else sys.stdout, flush=True)
    except (OSError, ValueError):
        pass


# ---------------------------------------------------------------- the progress report


@dataclass
class Report:
    """What `watch` (and `batch`) print: state changes as they happen, one summary line
    per interval, and at the end every job that did not end done, with its reason."""

    quiet: bool = False
    jobs: dict[int, Job] = field(default_factory=dict)
    queue_per_min: float = 40.0

    def track(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.jobs[job.id] = job

    def update(self, changed: list[Job], *, adopt: bool) -> None:
        """Record changed rows; print transitions of followed jobs. With `adopt`, jobs
        that became active meanwhile (another window's submit) are followed too."""
        for job in changed:
            before = self.jobs.get(job.id)
            if before is None and not (adopt and job.state.active):
                continue
            self.jobs[job.id] = job
            if not self.quiet and (before is None or before.state != job.state):
                say(fmt.job_line(job, time.time(), _last_words(job)))

    @property
    def active(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.state.active]

    def summary(self, now: float) -> str:
        jobs = list(self.jobs.values())
        done = [j for j in jobs if j.state == JobState.DONE]
        bad = [j for j in jobs if j.state in SUMMARY_STATES_BAD]
        active = self.active
        parts = [f"{len(done)}/{len(jobs)} done"]
        if bad:
            parts.append(f"{len(bad)} failed")
        parts.append(f"{len(active)} active")
        eta = self.eta(now)
        if eta is not None and active:
            parts.append(f"ETA ~{fmt.duration(eta)}")
        delivered = sum(j.cost_usd or 0.0 for j in done)
        committed = sum((j.cost_usd if j.cost_usd is not None else j.quote_usd) or 0.0
                        for j in jobs if j.state != JobState.CANCELLED)
        estimate = any(j.cost_is_estimate for j in jobs)
        parts.append(f"{fmt.money(delivered, estimate)} of {fmt.money(committed, estimate)}")
        return " · ".join(parts)

    def eta(self, now: float) -> float | None:
        """The whole batch: the slowest submitted job's remaining estimate, or the queue
        rate still to come plus a typical run time, whichever ends later."""
        estimates = [j.estimate_s for j in self.jobs.values() if j.estimate_s]
        typical = sorted(estimates)[len(estimates) // 2] if estimates else None
        remaining = [max(0.0, j.estimate_s - (now - (j.submitted_at or j.created_at)))
                     for j in self.active if j.estimate_s and j.submitted_at]
        pending = sum(j.state == JobState.PENDING for j in self.jobs.values())
        candidates = list(remaining)
        if pending and typical is not None:
            candidates.append(pending * 60.0 / self.queue_per_min + typical)
        return max(candidates) if candidates else None

    def not_done(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.state != JobState.DONE]

    def ending(self) -> list[str]:
        lines = []
        for job in sorted(self.not_done(), key=lambda j: j.id):
            reason = job.error or ("still " + job.state.value if job.state.active else "")
            lines.append(f"  #{job.id} {job.state.value}: {fmt.excerpt(reason, 160)}".rstrip(": "))
        return lines


def _last_words(job: Job) -> str:
    return job.error or ""


# ---------------------------------------------------------------- following


async def follow(session: Any, report: Report, *, every: float, signals: Any,
                 background: bool = False) -> str:
    """Follow until nothing is active. Returns why it ended: "idle", "stopped" (a
    signal or `engine stop`), "elsewhere" (a background engine found another engine)."""
    host = session.host
    announced_client = False
    waited = 0.0
    summary_at = time.monotonic()
    while True:
        if not host.is_engine:
            if await host.claim():
                if announced_client:
                    say(f"the engine ended: this {host.role} now follows the jobs")
            elif not announced_client:
                announced_client = True
                if not background:
                    who = host.follower(await host.status())
                    say(f"{who.describe()}; printing their progress here (this {host.role} "
                        "takes over if it ends)")
        if background and not host.is_engine:
            waited += 0.25
            if waited >= BACKGROUND_PATIENCE_S:
                return "elsewhere"
        report.update(await host.changes(), adopt=True)
        if signals.stop.is_set() or host.stop_requested.is_set():
            return "stopped"
        if host.is_engine and session.engine.active_count == 0:
            # Nothing left to do here. Jobs still active are parked (a full disk, a
            # halted provider) and say why at the end -- except pending ones another
            # window just recorded, which the engine's inbox is about to start.
            await session.engine.wait_idle()
            report.update(await host.changes(), adopt=True)
            if not any(j.state == JobState.PENDING and j.provider not in session.engine.halted
                       for j in report.active):
                return "idle"
        if not host.is_engine and not report.active:
            return "idle"  # another engine follows whatever else there is
        if time.monotonic() - summary_at >= every and report.jobs and not report.quiet:
            summary_at = time.monotonic()
            say(report.summary(time.time()))
        stop = asyncio.ensure_future(signals.stop.wait())
        await asyncio.wait({stop}, timeout=0.25)
        stop.cancel()


async def finish(session: Any, report: Report, why: str, signals: Any) -> int:
    """Stop (gracefully unless a second ctrl-c came) and say how it ended."""
    host = session.host
    if why == "stopped" and host.is_engine and host.engine.submitter.in_flight:
        say("stopping: waiting for the paid request on the wire to be answered "
            "(ctrl-c again to stop at once)", err=True)
    lost = await host.release(grace_s=30.0, force=signals.force)
    for job in lost:
        say(f"job {job.id} was being submitted when you stopped: now `unknown` (it may "
            "have been charged); check the provider, then `wan-tui resolve`, cancel or "
            "re-queue it", err=True)
    report.update(await host.changes(), adopt=False)
    if why == "elsewhere":
        say("another wan-tui follows the jobs; this background engine is not needed")
        return EXIT_OK
    if why == "stopped":
        say("stopped; `wan-tui watch` resumes where this left off")
        return EXIT_STOPPED
    if not report.jobs:
        say("no active jobs")
        return EXIT_OK
    say(report.summary(time.time()))
    ending = report.ending()
    for line in ending:
        say(line)
    done = len(report.jobs) - len(ending)
    say(f"{done} done, {len(ending)} not done")
    for reason in session.engine.halted.values():
        say(f"wan-tui: {reason}", err=True)
    return EXIT_OK if not ending else EXIT_FAIL


def hand_to_background(config: Any) -> int | None:
    """After a command that submitted jobs and let go of the engine: if jobs are still
    active and no engine runs, start a background one. Its pid, or None."""
    from tui.engine.background import spawn_background_engine
    from tui.engine.lock import EngineLock
    from tui.session import log_path

    if EngineLock(config.db_path.with_name("engine.lock")).holder() is not None:
        return None
    return spawn_background_engine(log_path(config))


async def run_following(session: Any, report: Report, *, every: float, quiet: bool,
                        background: bool = False) -> int:
    """The common body of `watch` and `batch`: signals, the loop, the ending."""
    from tui.engine.signals import StopSignals

    report.quiet = quiet
    with StopSignals() as signals:
        why = await follow(session, report, every=every, signals=signals,
                           background=background)
        return await finish(session, report, why, signals)


# ---------------------------------------------------------------- engine status / stop


async def engine_status(config: Any) -> int:
    import json

    from tui.engine.host import STATUS_KEY
    from tui.engine.lock import EngineLock
    from tui.session import log_path
    from tui.store import Store

    pid = EngineLock(config.db_path.with_name("engine.lock")).holder()
    store = await Store.open(config.history)
    try:
        text = await store.get_meta(STATUS_KEY)
        counts = await store.counts_by_state()
    finally:
        await store.close()
    try:
        status = json.loads(text) if text else {}
    except ValueError:
        status = {}
    active = sum(n for s, n in counts.items() if s.active)
    if pid is None:
        say("engine     none running (the next wan-tui or `wan-tui watch` becomes it)")
    else:
        since = status.get("since") if status.get("pid") == pid else None
        when = (f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
                f" ({fmt.duration(time.time() - since)})" if since else "")
        say(f"engine     pid {pid} ({status.get('role', 'engine')}){when}")
        for b in status.get("budgets", []) if since else []:
            say(f"budget     {b['provider']} {b['rate_class']}: {b['used']}/{b['limit']} "
                "requests in the last minute")
        for provider, b in (status.get("balances") or {}).items() if since else []:
            can = "can spend" if b.get("can_consume") else "CANNOT spend"
            say(f"balance    {provider} {b.get('label')} ({b.get('currency') or '?'}, {can})")
        for provider, reason in (status.get("halted") or {}).items():
            say(f"halted     {provider}: {reason}")
    say(f"active     {active} job{'s' if active != 1 else ''}")
    say(f"log        {status.get('log') or log_path(config)}")
    return EXIT_OK


async def engine_stop(config: Any) -> int:
    from tui.session import open_session

    async with open_session(config, lock=False, role="stop", serves=False) as s:
        pid = s.host.lock.holder()
        if pid is None:
            say("no engine is running")
            return EXIT_OK
        await s.host.stop_engine()
    say(f"pid {pid} stopped following the jobs (requests on the wire were answered first)")
    return EXIT_OK

