"""`wan-tui engine run`: the one process that follows the jobs of a history.

Windows and commands start it detached when there is work and none runs
(tui/engine/background.py); systemd, or a person debugging, runs it in the foreground. It
takes the history's lock or leaves at once (another engine won), resumes every active job,
serves the clients' requests (tui/engine/host.py), and ends:

- when no job task runs and no request came for `engine_idle_exit_s` (the config key);
  on a team's database only once no machine's job is active either (it may adopt them);
  not within three settle passes of a job becoming `unknown` on a provider with a ledger
  (Venice's may settle it: tui/engine/settle.py).
  Jobs it parked (a full disk, a halted provider) do not keep it: the next engine, started
  by a window or `wan-tui watch` while they wait, tries them again;
- on `wan-tui engine stop`, or the first SIGINT/SIGTERM: a paid submit on the wire is
  waited for and its id written down; a second SIGINT stops at once (that job `unknown`);
- a SIGHUP (the terminal of a foreground run went away) is not a reason to stop.

Why a process of its own, and not the first window: a window that also follows 1 000 jobs
shares one interpreter with 50 API requests a second, and its keys miss their latency
target on a slow machine; the quit question and the headless mode came from that sharing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from tui.engine.background import spawn_engine
from tui.engine.signals import StopSignals

log = logging.getLogger("wan_tui.engine")

IDLE_LOOK_EVERY_S = 0.5


async def run_engine(session: Any, *, say: Any = None) -> int:
    """Follow the jobs of an open session (tui/session.py, opened without the lock) until
    idle, stopped or signalled. Exit status 0, or 130 after ctrl-c."""
    say = say or (lambda _line, **_kw: None)
    config = session.config
    host = session.host
    if not await host.claim(start=False):
        # Another client's engine won the race (or one was already running): fine.
        log.info("pid %s: pid %s already follows the jobs; leaving", os.getpid(),
                 host.lock.holder())
        say(f"pid {host.lock.holder()} already follows the jobs (`wan-tui engine status`)")
        return 0
    with StopSignals() as signals:
        await host.claim()  # resume every active job and open the inbox
        say(f"pid {os.getpid()} follows the jobs of {config.db_path} "
            f"(log {config.log_file}; idle exit after {config.engine_idle_exit_s:g} s)")
        why = await _until_done(session, signals, config.engine_idle_exit_s)
        if why == "stopped" and session.engine.submitter.in_flight:
            log.info("stopping: waiting for the paid request on the wire")
        lost = await host.release(grace_s=30.0, force=signals.force)
    for job in lost:
        log.warning("job %s was being submitted when the engine stopped: now unknown",
                    job.id)
        say(f"job {job.id} was being submitted when you stopped: now `unknown` (it may "
            "have been charged); check the provider, then `wan-tui resolve`, cancel or "
            "re-queue it", err=True)
    log.info("pid %s: engine ends (%s)", os.getpid(), why)
    if why == "idle" and await _new_work(session):
        # A client recorded a job between the last look and the lock's release, and
        # may already have returned: the next engine must not wait for a window.
        pid = spawn_engine(config.log_file).pid
        log.info("work arrived while leaving: pid %s takes it", pid)
    say(f"engine ends ({why})")
    # ctrl-c in a terminal ends as interrupted commands do; SIGTERM (systemd's stop),
    # `engine stop` and an idle exit are successes.
    return 130 if why == "signal" and "SIGINT" in signals.received else 0


async def _new_work(session: Any) -> bool:
    """Active jobs this engine never took (recorded while it was leaving)."""
    parked = session.engine.parked_ids()
    leases = session.engine.leases
    return any(job_id not in parked
               for job_id in await session.store.work_for(leases.name, leases.lease_s))


async def _reason_to_stay(session: Any) -> bool:
    """With no job task running here: whether to stay anyway."""
    try:
        # A team's: while another machine's jobs run, stay, ready to adopt them if their
        # engine dies (an engine that left cannot).
        if session.engine.leases.shared and await session.store.active_heads():
            return True
        # A job just found `unknown`: its provider's ledger may settle it soon.
        return bool(await session.engine.settler.waiting())
    except Exception:  # the database is away: not a reason to leave, nor to stay forever
        log.exception("looking for a reason to stay")
        return False


async def _until_done(session: Any, signals: StopSignals, idle_exit_s: float) -> str:
    """"idle", "stopped" (`wan-tui engine stop`) or "signal"."""
    host, engine = session.host, session.engine
    idle_since: float | None = None
    while True:
        if signals.stop.is_set():
            return "signal"
        if host.stop_requested.is_set():
            return "stopped"
        now = time.monotonic()
        # New pending rows become tasks within the inbox's look (0.2 s): the task count
        # alone tells work from none.
        busy = engine.active_count > 0 or now - host.worked_at < IDLE_LOOK_EVERY_S
        if not busy:
            busy = await _reason_to_stay(session)
        if busy:
            idle_since = None
        elif idle_since is None:
            idle_since = now
        if idle_since is not None and now - idle_since >= idle_exit_s:
            log.info("nothing active for %.0f s: the engine leaves", now - idle_since)
            return "idle"
        stop = asyncio.ensure_future(signals.stop.wait())
        asked = asyncio.ensure_future(host.stop_requested.wait())
        await asyncio.wait({stop, asked}, timeout=min(IDLE_LOOK_EVERY_S, max(idle_exit_s, 0.05)))
        stop.cancel()
        asked.cancel()
