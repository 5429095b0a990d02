"""The Store: one interface to the history, whichever database holds it.

Every job costs real money, so every change is one short write transaction, committed
before the caller acts on it, and a claim such as "pending -> submitting" is a
compare-and-set, so two processes never both submit one job. The SQL here is written once
for both backends (`?` placeholders; the PostgreSQL connection turns them into its own);
what differs (the search index, a model-prefix match, handing out ids, how a transaction
starts, noticing other connections' commits) is a Dialect or a method the backend defines:
tui/store/sqlite.py (one person, a file) and tui/store/postgres.py (a team, a server).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tui.jobs import ACTIVE_STATES, Job, JobRequest, JobState, check_pick, check_transition
from tui.query import JobQuery
from tui.store.records import BatchStats, EngineRequest, Event, LeaseLost, Spend, StoreError
from tui.store.rows import (
    _ACTIVE_SQL,
    _INSERT_EVENT,
    _INSERT_EVENT_BY,
    _INSERT_JOB,
    _ORDER,
    _ORDER_KEY,
    _SELECT_JOB,
    Dialect,
    _job_from_row,
    _row_for,
    _settable,
    _states,
    _where,
)
from tui.store.team import TeamQueries
from tui.store.tx import Row, T, Tx

__all__ = ["Row", "Store", "T", "Tx", "is_server_dsn"]  # the backends take Row, T, Tx here


def is_server_dsn(target: object) -> bool:
    """Whether `target` names a PostgreSQL server rather than an SQLite file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class Store(TeamQueries):
    """Async access to one history database. Use it from one event loop per process.

    `open_store(path)` opens (or creates) an SQLite file; `open_store("postgresql://...")`
    connects to a PostgreSQL database. Both run the same migrations' numbers and answer
    every method below the same way (tests/test_store.py runs against both)."""

    dialect: Dialect
    # Where the history is, for messages: a file's path, or a DSN with its password masked.
    location: str
    path: Path | None = None  # the SQLite file; None on a server
    # On a team's server: this machine's name, stamped as file_host beside every `file` it
    # records, so other machines can say where the video is. None for one person's file.
    machine: str | None = None
    # Seconds the database server's clock is ahead of this machine's (measured on a team's
    # server, where every row's time is the server's; 0 for one person's file).
    clock_offset: float = 0.0

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        # Set on an engine's own store (tui/engine/leases.py): the engine's name, and the
        # epoch of each job lease it holds; every job write it makes is fenced by them
        # (_check_fence). None on a window's store: a window follows nothing.
        self.fence_name: str | None = None
        self.fenced: dict[int, int] = {}
        # One connection, many coroutines: a transaction spans several awaits, so without
        # this lock a second coroutine's statements would land inside the first's BEGIN.
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------ opening and closing

    def now(self) -> float:
        """The clock the store stamps rows with (updated_at, events)."""
        return self._clock()

    async def sync_clock(self) -> float:
        """Measure the server's clock again (PostgresStore); the offset. A file has none."""
        return self.clock_offset

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ what a backend provides

    async def _transact(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `body` in one write transaction, committed before this returns."""
        raise NotImplementedError

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError

    async def _next_ids(self, tx: Tx, count: int) -> int:
        """The first of `count` consecutive fresh job ids, reserved in this transaction.
        Giving ids explicitly lets a batch insert know its ids without a query per row."""
        raise NotImplementedError

    async def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap "anything new?" check."""
        raise NotImplementedError

    async def work_version(self) -> int:
        """Changes whenever another connection commits something that may give an engine
        work (a job recorded, claimed, given back or made active again, a request posted):
        what an engine's inbox watches, where data_version (every change, what windows
        show) would wake it at each of the other engines' poll results. A backend that
        cannot tell them apart (SQLite: one engine per file) returns data_version."""
        return await self.data_version()

    async def wait_for_change(self, since: int, timeout: float) -> bool:
        """Wait up to `timeout` seconds until data_version() is no longer `since` (another
        connection committed); True if it changed. Polls here; a backend that is told
        (PostgreSQL's NOTIFY) waits for that instead."""
        deadline = time.monotonic() + timeout
        while await self.data_version() == since:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(0.05, left))
        return True

    async def bulk_insert_for_benchmark(self, jobs: Sequence[Job]) -> None:
        """Seed fully-formed jobs (any state) plus one event each, in one transaction.

        For benchmarks and tests that need large histories. The ids in `jobs` are ignored:
        the database hands out fresh ones in order.
        """
        jobs = list(jobs)

        async def body(tx: Tx) -> None:
            first = await self._next_ids(tx, len(jobs))
            await tx.run_many(_INSERT_JOB, ((first + i, *_row_for(job)[1:])
                                            for i, job in enumerate(jobs)))
            await tx.run_many(_INSERT_EVENT, ((first + i, job.updated_at, job.state.value,
                                               "seeded") for i, job in enumerate(jobs)))

        if jobs:
            await self._transact(body)

    # ------------------------------------------------------------ writing jobs

    def _with_host(self, values: dict[str, Any]) -> dict[str, Any]:
        if self.machine and values.get("file") is not None and "file_host" not in values:
            return {**values, "file_host": self.machine}
        return values

    def _check_fence(self, current: Job) -> None:
        """Refuse (LeaseLost) a write by an engine that no longer holds the job's lease.

        Checked on the row just read under the write lock, in the same transaction as the
        write, so it is a fencing token in Kleppmann's sense: an engine that stalled past
        its lease, or was cut off, and comes back can never change a job another engine
        adopted meanwhile (its epoch is older). A job this engine holds no lease on may be
        changed only when no other engine follows it (a final job, an unclaimed pending
        one)."""
        if self.fence_name is None:
            return
        held = self.fenced.get(current.id)
        if held is not None:
            if current.owner != self.fence_name or current.lease_epoch != held:
                raise LeaseLost(current.id, current.owner, current.lease_epoch)
        elif current.state.active and current.owner not in (None, self.fence_name):
            raise LeaseLost(current.id, current.owner, current.lease_epoch)

    async def _job_in(self, tx: Tx, job_id: int, *, lock: bool = False) -> Job | None:
        # `lock`: the row stays ours until commit (FOR UPDATE where the backend has row
        # locks; SQLite's write lock already covers the whole file).
        suffix = self.dialect.for_update if lock else ""
        rows = await tx.fetch(f"{_SELECT_JOB} WHERE id = ?{suffix}", (job_id,))
        return next((_job_from_row(row) for row in rows), None)

    async def add_jobs(
        self,
        requests: Sequence[JobRequest],
        quotes: Sequence[float | None] | None = None,
        *,
        cost_is_estimate: bool | Sequence[bool] = False,
        sources: Sequence[int | None] | None = None,
    ) -> list[Job]:
        """Record requests as pending jobs, all or none, in one commit, before any is sent.

        `cost_is_estimate`: one flag for all, or one per request (a mixed batch has real
        quotes and table estimates side by side). `sources`: per request, the job it was
        made from (a variation), or None."""
        requests = list(requests)
        quotes = [None] * len(requests) if quotes is None else list(quotes)
        if len(quotes) != len(requests):
            raise ValueError(f"{len(requests)} requests but {len(quotes)} quotes")
        estimates = ([cost_is_estimate] * len(requests) if isinstance(cost_is_estimate, bool)
                     else list(cost_is_estimate))
        if len(estimates) != len(requests):
            raise ValueError(f"{len(requests)} requests but {len(estimates)} estimate flags")
        origins = [None] * len(requests) if sources is None else list(sources)
        if len(origins) != len(requests):
            raise ValueError(f"{len(requests)} requests but {len(origins)} sources")
        if not requests:
            return []
        now = self._clock()

        async def body(tx: Tx) -> list[Job]:
            first = await self._next_ids(tx, len(requests))
            jobs = [
                Job(
                    id=first + i,
                    request=req,
                    state=JobState.PENDING,
                    created_at=now,
                    updated_at=now,
                    quote_usd=quote,
                    cost_is_estimate=estimate,
                    batch_id=first,
                    source_id=source,
                    origin=self.machine,  # a team's: this machine's engine follows it
                )
                for i, (req, quote, estimate, source) in enumerate(
                    zip(requests, quotes, estimates, origins, strict=True))
            ]
            await tx.run_many(_INSERT_JOB, map(_row_for, jobs))
            await tx.run_many(
                _INSERT_EVENT,
                ((job.id, now, JobState.PENDING.value, "recorded, not yet sent") for job in jobs),
            )
            # Read back so callers hold exactly what get() would return.
            rows = await tx.fetch(f"{_SELECT_JOB} WHERE id >= ? AND id < ? ORDER BY id",
                                  (first, first + len(jobs)))
            return [_job_from_row(row) for row in rows]

        return await self._transact(body)

    async def import_jobs(self, jobs: Sequence[Job], details: Sequence[str]) -> list[Job]:
        """Record finished jobs rebuilt from their files (`wan-tui import`), in one commit.

        The ids in `jobs` are labels within this import: each job gets a fresh id, and a
        `batch_id` or `source_id` naming another job of the import is renamed with it (a
        batch is named by its first job, as add_jobs names it); one naming a job not in
        the import is dropped. A job whose provider and remote id the history already
        holds is skipped, checked under the write lock so two imports cannot both add it.
        Returns the jobs added, each with one event (`details`, per job)."""
        if len(details) != len(jobs):
            raise ValueError(f"{len(jobs)} jobs but {len(details)} details")

        async def body(tx: Tx) -> list[Job]:
            # The id lock (SQLite: the file's; PostgreSQL: _next_ids' advisory lock) is
            # taken first, so two imports check and add one after the other.
            first = await self._next_ids(tx, len(jobs)) if jobs else 0
            fresh: list[tuple[Job, str]] = []
            seen: set[tuple[str, str]] = set()
            for job, detail in zip(jobs, details, strict=True):
                if job.remote_id:
                    key = (job.provider, job.remote_id)
                    rows = await tx.fetch(
                        "SELECT 1 FROM jobs WHERE remote_id = ? AND provider = ? LIMIT 1", key)
                    if key in seen or rows:
                        continue
                    seen.add(key)
                fresh.append((job, detail))
            if not fresh:
                return []
            new_id = {job.id: first + i for i, (job, _) in enumerate(fresh)}
            batch_of: dict[int, int] = {}  # an old batch id -> its first imported job's id
            for job, _ in fresh:
                if job.batch_id is not None:
                    batch_of.setdefault(job.batch_id, new_id[job.id])
            added = [job.with_(id=new_id[job.id],
                               batch_id=batch_of.get(job.batch_id) if job.batch_id else None,
                               source_id=new_id.get(job.source_id) if job.source_id else None,
                               file_host=self.machine if job.file else None)
                     for job, _ in fresh]
            await tx.run_many(_INSERT_JOB, map(_row_for, added))
            await tx.run_many(_INSERT_EVENT, ((job.id, job.updated_at, job.state.value, detail)
                                              for job, (_, detail) in zip(added, fresh,
                                                                          strict=True)))
            rows = await tx.fetch(f"{_SELECT_JOB} WHERE id >= ? AND id < ? ORDER BY id",
                                  (first, first + len(added)))
            return [_job_from_row(row) for row in rows]

        return await self._transact(body)

    async def transition(
        self,
        job_id: int,
        new: JobState,
        detail: str = "",
        *,
        expect: Iterable[JobState] | None = None,
        **fields: Any,
    ) -> Job | None:
        """Move a job to `new`, set `fields`, log an event; committed when this returns.

        With `expect`, this is a claim: if the job is not in one of those states (another
        process got there first, or it does not exist) nothing is written and None comes
        back. Illegal transitions raise TransitionError; a missing job without `expect`
        raises StoreError.
        """
        new = JobState(new)
        settable = self._with_host(_settable(fields))
        expected = None if expect is None else _states(expect)

        async def body(tx: Tx) -> Job | None:
            current = await self._job_in(tx, job_id, lock=True)
            if current is None and expected is None:
                raise StoreError(f"there is no job {job_id}")
            if current is None or (expected is not None and current.state not in expected):
                return None
            self._check_fence(current)
            check_transition(current.state, new)
            now = self._clock()
            values = {**settable, "state": new.value, "updated_at": now}
            # Compare-and-set on the state we just read: belt and braces on top of the
            # write lock (SQLite) or row lock (PostgreSQL), so a claim never succeeds twice.
            changed = await self._set(tx, job_id, values, only_if_state=current.state)
            if not changed:
                return None
            await tx.run(_INSERT_EVENT_BY, (job_id, now, new.value, detail, self.fence_name))
            return await self._job_in(tx, job_id)

        return await self._transact(body)

    async def update(self, job_id: int, *, event: str | None = None, **fields: Any) -> Job:
        """Change fields without a state change; log an event only when `event` is given."""
        settable = self._with_host(_settable(fields))

        async def body(tx: Tx) -> Job:
            current = await self._job_in(tx, job_id, lock=True)
            if current is None:
                raise StoreError(f"there is no job {job_id}")
            self._check_fence(current)
            now = self._clock()
            await self._set(tx, job_id, {**settable, "updated_at": now})
            if event is not None:
                await tx.run(_INSERT_EVENT_BY, (job_id, now, current.state.value, event,
                                                self.fence_name))
            job = await self._job_in(tx, job_id)
            assert job is not None  # we hold the lock and just read it
            return job

        return await self._transact(body)

    async def set_pick(self, job_id: int, pick: str | None) -> Job:
        """Star, reject or clear (None) a job's pick, stamped with the time; the timeline
        gets a line, so the history says when a take was kept or set aside."""
        check_pick(pick)
        return await self.update(job_id, pick=pick, picked_at=self._clock(),
                                 event=f"picked: {pick}" if pick else "pick cleared")

    @staticmethod
    async def _set(
        tx: Tx,
        job_id: int,
        values: dict[str, Any],
        only_if_state: JobState | None = None,
    ) -> bool:
        # Column names come from _SETTABLE (checked) or the store itself, never from input.
        sql = f"UPDATE jobs SET {', '.join(f'{name} = ?' for name in values)} WHERE id = ?"
        params = [*values.values(), job_id]
        if only_if_state is not None:
            sql += " AND state = ?"
            params.append(only_if_state.value)
        return await tx.run(sql, params) == 1

    # ------------------------------------------------------------ reading jobs

    async def get(self, job_id: int) -> Job | None:
        rows = await self._read(f"{_SELECT_JOB} WHERE id = ?", (job_id,))
        return next((_job_from_row(row) for row in rows), None)

    async def find_by_remote_id(self, provider: str, remote_id: str) -> Job | None:
        rows = await self._read(
            f"{_SELECT_JOB} WHERE remote_id = ? AND provider = ? ORDER BY id DESC LIMIT 1",
            (remote_id, provider),
        )
        return next((_job_from_row(row) for row in rows), None)

    async def active_jobs(self) -> list[Job]:
        """Jobs the engine still owns (pending ... downloading), oldest first."""
        return await self.list_jobs(JobQuery(states=tuple(ACTIVE_STATES)), order="created",
                                    descending=False)

    async def active_heads(self) -> list[tuple[int, JobState, float]]:
        """(id, state, updated_at) of every active job, oldest first: what the engine's
        inbox compares five times a second, without building 1 000 whole jobs each time."""
        rows = await self._read(
            f"SELECT id, state, updated_at FROM jobs WHERE state IN ({_ACTIVE_SQL})"
            " ORDER BY created_at, id")
        return [(row[0], JobState(row[1]), row[2]) for row in rows]

    async def pending_remote_deletes(self) -> list[Job]:
        """Finished jobs whose remote copy the user's setting says to delete."""
        rows = await self._read(f"{_SELECT_JOB} WHERE delete_pending = 1 ORDER BY id")
        return [_job_from_row(row) for row in rows]

    async def list_jobs(
        self,
        query: JobQuery | None = None,
        *,
        order: str = "created",
        descending: bool = True,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Job]:
        """One page of the jobs `query` admits (all of them without one)."""
        if order not in _ORDER:
            raise ValueError(f"cannot sort by {order!r}; choose one of {', '.join(_ORDER)}")
        where, params = _where(query, self.dialect)
        keys = ", ".join(self.dialect.sort_key(key, descending) for key in _ORDER[order])
        sql = f"{_SELECT_JOB}{where} ORDER BY {keys} LIMIT ? OFFSET ?"
        rows = await self._read(sql, [*params, self.dialect.no_limit if limit is None
                                      else limit, offset])
        return [_job_from_row(row) for row in rows]

    async def position_of(
        self,
        job_id: int,
        query: JobQuery | None = None,
        *,
        order: str = "created",
        descending: bool = True,
    ) -> int | None:
        """The job's offset in `list_jobs` with the same arguments, or None when it does not
        pass the query (or does not exist): one count, whatever the history's size."""
        if order not in _ORDER_KEY:
            raise ValueError(f"cannot sort by {order!r}; choose one of {', '.join(_ORDER)}")
        where, params = _where(query, self.dialect)
        keys = ", ".join(_ORDER_KEY[order])
        before = ">" if descending else "<"
        both = " AND " if where else " WHERE "
        sql = (
            f"SELECT EXISTS (SELECT 1 FROM jobs{where}{both}id = ?),"
            f" (SELECT count(*) FROM jobs{where}{both}({keys}) {before}"
            f" (SELECT {keys} FROM jobs WHERE id = ?))"
        )
        rows = await self._read(sql, [*params, job_id, *params, job_id])
        found, position = rows[0]
        return int(position) if found else None

    async def count_jobs(self, query: JobQuery | None = None) -> int:
        where, params = _where(query, self.dialect)
        rows = await self._read(f"SELECT count(*) FROM jobs{where}", params)
        return int(rows[0][0])

    async def batches(self, limit: int = 50, batch: int | None = None) -> list[BatchStats]:
        """The newest `limit` batches (or just `batch`), newest first."""
        chosen = ("SELECT CAST(? AS BIGINT) AS b" if batch is not None else
                  "SELECT DISTINCT batch_id AS b FROM jobs WHERE batch_id IS NOT NULL"
                  " ORDER BY batch_id DESC LIMIT ?")
        rows = await self._read(
            "SELECT batch_id, state, count(*),"
            " coalesce(sum(CASE WHEN state IN ('failed', 'expired', 'cancelled')"
            "     THEN cost_usd ELSE coalesce(cost_usd, quote_usd) END), 0.0),"
            " coalesce(sum(CASE WHEN state = 'done' THEN cost_usd END), 0.0),"
            " min(created_at), min(submitted_at), max(finished_at),"
            " (SELECT prompt FROM jobs AS first WHERE first.id = batched.batch_id)"
            f" FROM jobs AS batched WHERE batch_id IN ({chosen}) GROUP BY batch_id, state",
            (batch if batch is not None else limit,))
        by_batch: dict[int, dict[str, Any]] = {}
        for bid, state, n, committed, delivered, created, submitted, finished, prompt in rows:
            entry = by_batch.setdefault(bid, {
                "counts": dict.fromkeys(JobState, 0), "committed": 0.0, "delivered": 0.0,
                "created": created, "submitted": None, "finished": None, "prompt": prompt})
            entry["counts"][JobState(state)] = n
            entry["committed"] += committed
            entry["delivered"] += delivered
            entry["created"] = min(entry["created"], created)
            if submitted is not None:
                entry["submitted"] = min(entry["submitted"] or submitted, submitted)
            if finished is not None:
                entry["finished"] = max(entry["finished"] or finished, finished)
        return [BatchStats(bid, e["counts"], e["committed"], e["delivered"], e["created"],
                           e["submitted"], e["finished"], e["prompt"] or "")
                for bid, e in sorted(by_batch.items(), reverse=True)]

    async def running_in_batch(self, batch: int) -> list[tuple[str, Any, Any, float]]:
        """(state, estimate_s, submitted_at, created_at) of the batch's unfinished jobs:
        what its ETA needs, without building whole jobs (a batch may run 1 000 at once)."""
        rows = await self._read(
            "SELECT state, estimate_s, submitted_at, created_at FROM jobs"
            f" WHERE batch_id = ? AND state IN ({_ACTIVE_SQL})", (batch,))
        return [tuple(row) for row in rows]

    async def current_batch(self) -> int | None:
        """The newest batch with jobs still running, else the newest batch."""
        rows = await self._read(
            f"SELECT coalesce((SELECT max(batch_id) FROM jobs WHERE state IN ({_ACTIVE_SQL})),"
            " (SELECT max(batch_id) FROM jobs))")
        return rows[0][0]

    async def counts_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each state; every state is present, zeros included."""
        rows = await self._read("SELECT state, count(*) FROM jobs GROUP BY state")
        counts = dict.fromkeys(JobState, 0)
        counts.update({JobState(state): n for state, n in rows})
        return counts

    async def events(self, job_id: int) -> list[Event]:
        rows = await self._read(
            "SELECT job_id, at, state, detail FROM events WHERE job_id = ? ORDER BY id",
            (job_id,),
        )
        return [Event(row[0], row[1], JobState(row[2]), row[3]) for row in rows]

    async def spend_since(self, since: float) -> float:
        """Money spent or maybe spent by jobs sent at or after `since`: what was charged,
        plus each `unknown` job (maybe charged) at its quoted price."""
        return (await self.spend_detail(since)).total_usd

    async def spend_detail(self, since: float) -> Spend:
        """Spend since `since`, with the part that is only maybe charged shown apart.

        An `unknown` job has no submitted_at (its answer never arrived): it counts from its
        last change, which is when the engine gave up waiting for that answer."""
        rows = await self._read(
            "SELECT (SELECT coalesce(sum(cost_usd), 0.0) FROM jobs"
            "        WHERE submitted_at >= ? AND state != 'unknown'),"
            " (SELECT coalesce(sum(coalesce(cost_usd, quote_usd, 0)), 0.0) FROM jobs"
            "  WHERE state = 'unknown' AND coalesce(submitted_at, updated_at) >= ?),"
            " (SELECT count(*) FROM jobs"
            "  WHERE state = 'unknown' AND coalesce(submitted_at, updated_at) >= ?)",
            (since, since, since),
        )
        charged, maybe, maybe_jobs = rows[0]
        return Spend(float(charged), float(maybe), int(maybe_jobs))

    async def learned_durations(self, provider: str, model: str, limit: int = 50) -> list[float]:
        """Run times (ready_at - submitted_at) of this model's latest finished jobs, newest
        first: the ETA for providers that do not send one."""
        rows = await self._read(
            "SELECT ready_at - submitted_at FROM jobs"
            " WHERE provider = ? AND model = ? AND submitted_at IS NOT NULL"
            " AND ready_at >= submitted_at"  # NULL or clock-skewed rows teach nothing
            " ORDER BY ready_at DESC, id DESC LIMIT ?",
            (provider, model, limit),
        )
        return [float(row[0]) for row in rows]

    async def changed_since(self, since: float) -> list[Job]:
        """Jobs whose row changed at or after `since` (another process's writes)."""
        rows = await self._read(f"{_SELECT_JOB} WHERE updated_at >= ? ORDER BY updated_at",
                                (since,))
        return [_job_from_row(row) for row in rows]

    # ------------------------------------------------------------ models cache and meta

    async def cached_models(self, provider: str) -> tuple[float, list[dict]] | None:
        rows = await self._read(
            "SELECT fetched_at, models_json FROM models_cache WHERE provider = ?", (provider,)
        )
        if not rows:
            return None
        return float(rows[0][0]), json.loads(rows[0][1])

    async def save_models(self, provider: str, models: list[dict]) -> None:
        text = json.dumps(models, sort_keys=True)
        await self._transact(lambda tx: tx.run(
            "INSERT INTO models_cache (provider, fetched_at, models_json) VALUES (?, ?, ?)"
            " ON CONFLICT (provider) DO UPDATE"
            " SET fetched_at = excluded.fetched_at, models_json = excluded.models_json",
            (provider, self._clock(), text)))

    async def get_meta(self, key: str) -> str | None:
        rows = await self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._transact(lambda tx: tx.run(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value)))

    # ------------------------------------------------------------ requests to the engine

    async def post_request(self, kind: str, job_id: int | None = None, *,
                           target: str | None = None) -> int:
        """A window asks an engine for an action; returns the request's id. `target`: the
        engine that must carry it out (stop, resume: this machine's); None: the one that
        follows the job, or any engine for a job nobody follows."""
        async def body(tx: Tx) -> int:
            rows = await tx.fetch(
                "INSERT INTO requests (kind, job_id, created_at, target) VALUES (?, ?, ?, ?)"
                " RETURNING id", (kind, job_id, self._clock(), target))
            return int(rows[0][0])

        return await self._transact(body)

    async def take_requests(self, pid: int, name: str, lease_s: float) -> list[EngineRequest]:
        """Claim every open request for this engine, in order, in one commit: those aimed
        at it, and those about a job it follows or nobody follows.

        A request taken by an engine that died before finishing it is taken again (by its
        own next process at once, by another once the taker's heartbeat is older than a
        lease): every kind is idempotent (cancelling a cancelled job, deleting deleted
        media), so carrying one out a second time after a crash changes nothing."""
        now = self._clock()
        waiting = ("SELECT id, kind, job_id, created_at FROM requests AS r"
                   " WHERE (state = 'new' AND (target IS NULL OR target = ?)"
                   "        OR state = 'taken' AND (target = ? AND taken_by != ?"
                   "            OR coalesce(target, '') != ? AND NOT EXISTS (SELECT 1"
                   "                FROM engines AS e WHERE e.name = r.target"
                   "                AND e.stopped_at IS NULL AND e.heartbeat_at >= ?)))"
                   " AND (job_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS j"
                   f"      WHERE j.id = r.job_id AND j.state IN ({_ACTIVE_SQL})"
                   "       AND j.owner IS NOT NULL AND j.owner != ?))"
                   " ORDER BY id")
        params = (name, name, pid, name, now - lease_s, name)
        # The engine looks at every commit that may give it work and almost always finds
        # no request: one plain read then, and a transaction only when there is one.
        if not await self._read(waiting, params):
            return []

        async def body(tx: Tx) -> list[Row]:
            rows = await tx.fetch(waiting + self.dialect.skip_locked, params)
            await tx.run_many(
                "UPDATE requests SET state = 'taken', taken_by = ?, target = ? WHERE id = ?",
                [(pid, name, row[0]) for row in rows])
            return rows

        rows = await self._transact(body)
        return [EngineRequest(int(r[0]), str(r[1]), r[2], float(r[3])) for r in rows]

    async def finish_request(self, request_id: int, ok: bool, result: str) -> None:
        await self._transact(lambda tx: tx.run(
            "UPDATE requests SET state = ?, result = ?, finished_at = ? WHERE id = ?",
            ("done" if ok else "failed", result, self._clock(), request_id)))

    async def request_outcome(self, request_id: int) -> tuple[str, str | None, float | None]:
        """(state, result, finished_at) of a request: 'new', 'taken', 'done' or 'failed'."""
        rows = await self._read(
            "SELECT state, result, finished_at FROM requests WHERE id = ?", (request_id,))
        if not rows:
            raise StoreError(f"no request {request_id} in the history")
        return str(rows[0][0]), rows[0][1], rows[0][2]
