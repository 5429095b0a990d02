"""What `watch` and `batch --follow` print while the engine follows their jobs. No
Textual here.

Every command is a client of the engine process (tui/engine/host.py): it records jobs or
posts a request, starts an engine if none runs, and reads the history for progress.
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


async def follow(session: Any, report: Report, *, every: float, signals: Any) -> str:
    """Print the engine's progress on the report's jobs until none is active, or every
    one still active is parked by the engine (a full disk, a halted provider). Returns
    why it ended: "idle", "parked" or "stopped" (a signal: this client stops, the engine
    goes on).

    The engine is another process; this one only reads the history, and starts an
    engine when none runs while there is work (host.keep_engine: after a crash, too)."""
    host = session.host
    keeper = asyncio.ensure_future(host.keep_engine())
    try:
        if report.active:
            # Jobs an engine parked are tried again: the user may have fixed the cause.
            await host.resume()
            if not report.quiet:
                say(f"pid {host.lock.holder()} follows the jobs; printing their progress "
                    "here (ctrl-c stops printing, not the jobs)")
        summary_at = time.monotonic()
        while True:
            report.update(await host.changes(), adopt=True)
            if signals.stop.is_set():
                return "stopped"
            if not report.active:
                return "idle"
            status = await host.status()
            if status.get("pid") == host.lock.holder() and \
                    {job.id for job in report.active} <= set(status.get("parked") or ()):
                return "parked"
            if time.monotonic() - summary_at >= every and report.jobs and not report.quiet:
                summary_at = time.monotonic()
                say(report.summary(time.time()))
            stop = asyncio.ensure_future(signals.stop.wait())
            await asyncio.wait({stop}, timeout=0.25)
            stop.cancel()
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)


async def finish(session: Any, report: Report, why: str) -> int:
    """Say how it ended: every job not done with its reason; 0 when all ended done."""
    host = session.host
    report.update(await host.changes(), adopt=False)
    if why == "stopped":
        active = len(report.active)
        pid = host.lock.holder()
        if active and pid is not None:
            say(f"stopped printing; pid {pid} still follows {active} active "
                f"job{'s' if active != 1 else ''} (`wan-tui watch` shows them again, "
                "`wan-tui engine stop` ends the engine)")
        else:
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
    status = await host.status()
    for reason in (status.get("halted") or {}).values():
        say(f"wan-tui: {reason}", err=True)
    if status.get("disk_problem") and why == "parked":
        say(f"wan-tui: {status['disk_problem']}", err=True)
    return EXIT_OK if not ending else EXIT_FAIL


async def run_following(session: Any, report: Report, *, every: float, quiet: bool) -> int:
    """The common body of `watch` and `batch --follow`: signals, the loop, the ending.
    A signal (ctrl-c, the terminal closing) ends this client only."""
    from tui.engine.signals import StopSignals

    report.quiet = quiet
    with StopSignals(hangup_stops=True) as signals:
        why = await follow(session, report, every=every, signals=signals)
    return await finish(session, report, why)
