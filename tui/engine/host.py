"""Who follows the jobs of one history: the engine process, and its clients.

Exactly one process per home polls and sends paid requests: the one holding the home's
lock (tui/engine/lock.py), which is `wan-tui engine run` (tui/engine/daemon.py). On a team's
database every machine has one, each following the jobs it holds leases on
(tui/engine/leases.py). Every window and command is a client of its machine's engine:

- it records new jobs as `pending` rows itself (a commit; the engine notices within a
  fraction of a second and submits them), and re-queues the same way;
- it asks the engine for actions that touch a running job or the provider (cancel, delete,
  stop) through the `requests` table, and waits for the answer;
- it reads the history for display, noticing other processes' commits (SQLite's
  `PRAGMA data_version`, PostgreSQL's NOTIFY);
- it starts an engine (tui/engine/background.py) when there is work and none runs: at
  once after recording jobs, and within a second when the engine dies (`keep_engine`).

The engine side (`serve`) watches the same table. Requests are durable rows, so one posted
while the engine changes hands is carried out by the next engine; a claim is a committed
UPDATE, so each is carried out once (see Store.take_requests for the crash case).

A test or the dashboard benchmark may still run an engine inside a window's process (a
session opened with the lock: `claim` serves in-process); the product never does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tui.engine.background import EngineStarter
from tui.engine.engine import Engine, EngineError
from tui.engine.lock import EngineLock
from tui.errors import WanError
from tui.jobs import Job, JobRequest
from tui.providers.base import Quote
from tui.store import EngineRequest, Store

log = logging.getLogger("wan_tui.engine")

STATUS_KEY = "engine:"  # + the engine's name: what each machine's engine last published
INBOX_EVERY_S = 0.2  # how often the engine looks for other windows' commits
# ...and looks anyway: a lease runs out with time, not with a commit (adoption waits at
# most a lease plus this), and a notice may be missed.
FULL_LOOK_EVERY_S = 2.0
STATUS_EVERY_S = 2.0
WATCH_EVERY_S = 0.25  # how often a client checks that an engine runs (takeover < 1 s)
ASK_TIMEOUT_S = 20.0


def status_key(name: str) -> str:
    """The meta key under which engine `name` publishes its status."""
    return STATUS_KEY + name


@dataclass(frozen=True)
class Follower:
    """Who follows the jobs, as a window shows it."""

    pid: int | None  # None: nobody (no engine runs)
    since: float | None
    here: bool  # this process
    role: str = ""  # "dashboard", "watch", "background", ...

    def describe(self) -> str:
        if self.pid is None:
            return "nobody follows the jobs"
        when = time.strftime("%H:%M", time.localtime(self.since)) if self.since else "?"
        if self.here:
            return f"this window follows the jobs (since {when})"
        return f"pid {self.pid} ({self.role or 'engine'}) follows the jobs since {when}"


class EngineHost:
    def __init__(self, engine: Engine, reader: Store, lock: EngineLock, *,
                 role: str = "dashboard", log_path: str | None = None,
                 serves: bool = True) -> None:
        self.engine = engine
        self.store = engine.store
        self.reader = reader
        self.lock = lock
        self.role = role
        self.log_path = log_path
        # True: when this process becomes the engine it follows every job and serves other
        # windows (a dashboard, watch). False: a one-shot command that only acts.
        self.serves = serves
        self.since: float | None = None
        self.stop_requested = asyncio.Event()  # `wan-tui engine stop` asked this engine
        self._seen_version: int | None = None
        self._seen_at = time.time()
        self._seen_ids: set[int] = set()
        self._status_text = ""
        self._serving = False
        # A client starts the engine process when there is work and none runs.
        self.starter = EngineStarter(lock, log_path or os.devnull)
        self.worked_at = time.monotonic()  # the engine's last request carried out

    # ------------------------------------------------------------ the role

    @property
    def status_key(self) -> str:
        return status_key(self.engine.leases.name)

    @property
    def is_engine(self) -> bool:
        return self.lock.held

    async def claim(self, *, start: bool | None = None) -> bool:
        """Become the engine if nobody is. With `start` (default: `serves`), resume every
        active job and serve other windows' requests; without, only hold the lock and act
        on the engine directly (a one-shot CLI command while it runs)."""
        if not self.lock.held:
            if not self.lock.try_acquire():
                return False
            self.since = time.time()
        if (self.serves if start is None else start) and not self._serving:
            self._serving = True
            log.info("pid %s (%s) follows the jobs of %s", os.getpid(), self.role,
                     self.store.path)
            await self.engine.start()
            self.engine.spawn(self._serve(), "service-inbox")
            await self._write_status(force=True)
        return True

    async def release(self, *, grace_s: float = 30.0, force: asyncio.Event | None = None
                      ) -> list[Job]:
        """Stop being the engine: a submit on the wire is waited for (up to `grace_s`),
        then everything stops. Returns the jobs left `unknown` by a cut-off submit."""
        if self._serving:
            log.info("pid %s (%s) stops following the jobs", os.getpid(), self.role)
        lost = await self.engine.stop(grace_s=grace_s, force=force)
        self._serving = False
        if self.lock.held:
            try:
                await self.store.set_meta(self.status_key, "{}")
            except Exception:  # the status is a courtesy; the lock is what counts
                log.exception("could not clear the engine status")
            self.lock.release()
        return lost

    def follower(self, status: dict | None = None) -> Follower:
        if self.lock.held:
            return Follower(os.getpid(), self.since, True, self.role)
        pid = self.lock.holder()
        status = status or {}
        if pid is None:
            return Follower(None, None, False)
        since = status.get("since") if status.get("pid") == pid else None
        return Follower(pid, since, False, status.get("role", "") if since else "")

    async def status(self) -> dict:
        """What the engine last published (pid, since, budgets, active, log)."""
        try:
            text = await self.reader.get_meta(self.status_key)
            return json.loads(text) if text else {}
        except (ValueError, TypeError):
            return {}

    # ------------------------------------------------------------ a client's engine

    async def has_work(self) -> bool:
        """Anything for this machine's engine to do: an active job it follows or would
        claim (on a team's history another machine's running jobs are not)."""
        leases = self.engine.leases
        return bool(await self.reader.work_for(leases.name, leases.lease_s))

    def wake(self) -> int | None:
        """Work was just recorded: make sure an engine runs (this process is a client,
        or is the engine itself). The engine's pid."""
        if self.lock.held:
            return os.getpid()
        return self.starter.ensure()

    async def keep_engine(self) -> None:
        """A client's watch, for as long as it runs: when no engine holds the lock and
        there is work (SIGKILL, a crash, an idle exit racing a new job), start one.
        Two clients may both start one; the lock decides, the loser exits quietly."""
        announced: int | None = None
        while True:
            try:
                if self.lock.holder() is None and await self.has_work():
                    pid = self.starter.ensure()
                    if pid != announced:
                        announced = pid
                        log.info("no engine followed the jobs: pid %s (started by pid %s) "
                                 "takes them", pid, os.getpid())
                else:
                    self.starter.reap()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad moment of the database: look again next time
                log.exception("checking for the engine")
            await asyncio.sleep(WATCH_EVERY_S)

    # ------------------------------------------------------------ actions from any window

    async def add(self, requests: Sequence[JobRequest],
                  quotes: Sequence[Quote | float | None] | None = None, *,
                  sources: Sequence[int | None] | None = None) -> list[Job]:
        if self.is_engine:
            return await self.engine.add(requests, quotes, sources=sources)
        quotes = list(quotes) if quotes is not None else [None] * len(requests)
        jobs = await self.store.add_jobs(
            requests, [q.usd if isinstance(q, Quote) else q for q in quotes],
            cost_is_estimate=[isinstance(q, Quote) and q.estimate for q in quotes],
            sources=sources)
        self.wake()  # committed first: an engine that starts now finds them
        return jobs

    async def requeue(self, job_id: int, quote: Quote | float | None = None) -> Job:
        if self.is_engine:
            return await self.engine.requeue(job_id, quote)
        job = await self.engine.get(job_id)
        if job.state.active:
            raise EngineError(f"job {job_id} is still {job.state}; cancel it before re-queueing")
        (new,) = await self.add([job.request], [quote])
        await self.store.update(job.id, event=f"re-queued as job {new.id}")
        return new

    async def cancel(self, job_id: int) -> Job:
        if self.is_engine:
            return await self.engine.cancel(job_id)
        return await self._ask("cancel", job_id)

    async def delete_remote(self, job_id: int) -> Job:
        if self.is_engine:
            return await self.engine.delete_remote(job_id)
        return await self._ask("delete", job_id)

    async def stop_engine(self, timeout_s: float = ASK_TIMEOUT_S) -> bool:
        """Ask the running engine to finish what is on the wire and stop. False if none."""
        pid = self.lock.holder()
        if self.is_engine or pid is None:
            return False
        request = await self.store.post_request("stop", target=self.engine.leases.name)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            # It let go of the lock, and its process has ended: nothing of it writes
            # to the home any more (the demo deletes that folder next).
            if self.lock.holder() is None and self.starter.gone(pid):
                return True
            state, result, _ = await self.store.request_outcome(request)
            if state == "failed":
                raise EngineError(result or "the engine refused to stop")
            await asyncio.sleep(0.05)
        raise EngineError("the engine did not answer within "
                          f"{timeout_s:.0f} s; `wan-tui engine status` shows its pid")

    async def resume(self) -> None:
        """Ask the engine (started if none runs) to start again the jobs it parked (a
        full disk the user may have fixed), and wait until it has."""
        if self.lock.held:
            await self.engine.resume_parked()
            return
        request = await self.store.post_request("resume", target=self.engine.leases.name)
        await self._wait_answer("resume", request, "resume")

    async def _ask(self, kind: str, job_id: int) -> Job:
        """Post a request and wait for the engine's answer, starting an engine if none
        runs (or the one that did goes away meanwhile)."""
        await self.engine.get(job_id)  # a typo in the id is refused here, not by the engine
        request = await self.store.post_request(kind, job_id)
        await self._wait_answer(kind, request, f"{kind} job {job_id}")
        return await self.engine.get(job_id)

    async def _wait_answer(self, kind: str, request: int, what: str) -> None:
        deadline = time.monotonic() + ASK_TIMEOUT_S
        while time.monotonic() < deadline:
            state, result, _ = await self.store.request_outcome(request)
            if state == "done":
                return
            if state == "failed":
                raise EngineError(result or f"the engine could not {what}")
            self.wake()  # cheap while one runs (a flock probe); starts one if none does
            await asyncio.sleep(0.02)
        raise EngineError(f"the engine did not answer within {ASK_TIMEOUT_S:.0f} s; "
                          "the request stays queued and is carried out when it can be")

    # ------------------------------------------------------------ what other windows see

    async def changes(self) -> list[Job]:
        """Jobs whose rows other connections changed since the last call (cheap when
        nothing changed: one PRAGMA)."""
        version = await self.reader.data_version()
        if version == self._seen_version:
            return []
        self._seen_version = version
        # `>=` with the rows already seen at that instant left out: two rows written in
        # the same clock tick are both reported, and none twice.
        rows = await self.reader.changed_since(self._seen_at)
        jobs = [j for j in rows
                if j.updated_at > self._seen_at or j.id not in self._seen_ids]
        if rows:
            latest = max(j.updated_at for j in rows)
            self._seen_ids = {j.id for j in rows if j.updated_at == latest}
            self._seen_at = latest
        return jobs

    # ------------------------------------------------------------ the engine side

    async def _serve(self) -> None:
        """The engine's inbox: other windows' requests and new pending jobs."""
        version: int | None = None
        looked = status_at = 0.0
        while self.engine.running:
            now = time.monotonic()
            try:
                # Only commits that may give it work (a job recorded or given back, a
                # request posted), not the other engines' poll results (Store.work_version).
                current = await self.store.work_version()
                if current != version or now - looked >= FULL_LOOK_EVERY_S:
                    version, looked = current, now
                    leases = self.engine.leases
                    for request in await self.store.take_requests(os.getpid(), leases.name,
                                                                  leases.lease_s):
                        self.worked_at = time.monotonic()
                        await self._carry_out(request)
                    await self.engine.rescan()
                if now - status_at >= STATUS_EVERY_S:
                    status_at = now
                    await self._write_status()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad moment of the database must not end the inbox
                log.exception("engine inbox")
            await asyncio.sleep(INBOX_EVERY_S)

    async def _carry_out(self, request: EngineRequest) -> None:
        log.info("request %s: %s job %s", request.id, request.kind, request.job_id)
        try:
            if request.kind == "stop":
                self.stop_requested.set()
                result = f"pid {os.getpid()} stops after the requests on the wire"
            elif request.kind == "cancel" and request.job_id is not None:
                result = str((await self._cancel_idempotent(request.job_id)).state)
            elif request.kind == "delete" and request.job_id is not None:
                result = str((await self.engine.delete_remote(request.job_id)).state)
            elif request.kind == "resume":
                await self.engine.resume_parked()
                # Published before the answer: a client reading the status after it sees
                # no parking from before its request.
                await self._write_status(force=True)
                result = "resumed"
            else:
                raise EngineError(f"unknown request {request.kind!r}")
        except WanError as err:  # refused (EngineError) or the history failed: say so
            await self.store.finish_request(request.id, False, str(err))
            return
        await self.store.finish_request(request.id, True, result)

    async def _cancel_idempotent(self, job_id: int) -> Job:
        job = await self.engine.get(job_id)
        if job.state.value == "cancelled":
            return job  # carried out before a crash: the outcome the user asked for
        return await self.engine.cancel(job_id)

    async def _write_status(self, *, force: bool = False) -> None:
        budgets = [
            {"provider": p, "rate_class": c, "used": b.used, "limit": b.limit}
            for (p, c), b in sorted(self.engine.budgets.items())
        ]
        parked = self.engine.parked_ids()
        if parked:  # only the active ones: the rest have settled
            parked &= {job_id for job_id, _, _ in await self.store.active_heads()}
        status = {
            "pid": os.getpid(), "host": socket.gethostname(), "since": self.since,
            "role": self.role, "log": self.log_path,
            "active": self.engine.active_count, "budgets": budgets,
            "halted": self.engine.halted, "parked": sorted(parked),
            "disk_problem": self.engine.downloader.disk_problem,
            "balances": {p: {"label": b.label(), "currency": b.currency,
                             "can_consume": b.can_consume}
                         for p, b in self.engine.balances.balances.items()},
        }
        text = json.dumps(status, sort_keys=True)
        if force or text != self._status_text:
            self._status_text = text
            await self.store.set_meta(self.status_key, text)
