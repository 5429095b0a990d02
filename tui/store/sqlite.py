"""The Store: async access to the SQLite history, the only code that writes it.

Every job costs real money, so every change is one short write transaction committed to
disk (WAL, synchronous=FULL) before the caller acts on it. A headless `watch` and the
dashboard may have the same file open: writes take the write lock up front (BEGIN
IMMEDIATE) and a claim such as "pending -> submitting" is a compare-and-set, so two
processes never both submit one job.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from tui.jobs import (
    ACTIVE_STATES,
    Job,
    JobRequest,
    JobState,
    check_pick,
    check_transition,
)
from tui.query import JobQuery

# Through the modules, not their names: a test appends a migration or plays a read-only
# file by setting tui.store.schema.MIGRATIONS or tui.store.files.read_only_reason.
from tui.store import files, schema
from tui.store.records import BatchStats, EngineRequest, Event, Spend, StoreError
from tui.store.rows import (
    _ACTIVE_SQL,
    _INSERT_EVENT,
    _INSERT_JOB,
    _ORDER,
    _ORDER_KEY,
    _SELECT_JOB,
    _job_from_row,
    _row_for,
    _settable,
    _states,
    _where,
)

# ------------------------------------------------------------------------------ Store


class Store:
    """Async access to one history database. Use it from one event loop per process."""

    def __init__(self, db: aiosqlite.Connection, path: Path, clock: Callable[[], float]):
        self._db: aiosqlite.Connection | None = db
        self.path = path
        self._clock = clock
        # One connection, many coroutines: a transaction spans several awaits, so without
        # this lock a second coroutine's statements would land inside the first's BEGIN.
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------ opening and closing

    @classmethod
    async def open(cls, path: Path, *, clock: Callable[[], float] = time.time) -> Store:
        path = Path(path).expanduser()
        if files.read_only_reason(path) is not None:
            # Said up front, once: every command writes sooner or later, and a failure then
            # would come from deep inside (one per job) instead of this one line.
            raise StoreError(files.open_problem(path, sqlite3.OperationalError("read-only")))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            files._create_private(path)
            db = await aiosqlite.connect(path, isolation_level=None)  # we issue BEGIN ourselves
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(files.open_problem(path, exc)) from exc
        db.row_factory = sqlite3.Row
        store = cls(db, path, clock)
        try:
            await store._configure()
            await store._migrate()
        except BaseException:
            await db.close()
            raise
        return store

    async def _configure(self) -> None:
        db = self._conn()
        try:
            await db.execute("PRAGMA busy_timeout = 5000")
            await self._use_wal(db)
            # FULL: a committed transition survives power loss, not only a crash.
            await db.execute("PRAGMA synchronous = FULL")
            await db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(files.open_problem(self.path, exc)) from exc

    @staticmethod
    async def _use_wal(db: aiosqlite.Connection, patience_s: float = 5.0) -> None:
        # Switching a new file to WAL needs an exclusive lock, and SQLite does not wait
        # for that one (busy_timeout does not apply), so two processes creating the file
        # at once retry here. WAL is persistent: later opens find it already on.
        deadline = time.monotonic() + patience_s
        delay = 0.005
        while True:
            try:
                await db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def _user_version(self) -> int:
        rows = await self._conn().execute_fetchall("PRAGMA user_version")
        return int(next(iter(rows))[0])

    def _refuse_newer(self, version: int) -> None:
        latest = len(schema.MIGRATIONS)
        if version > latest:
            raise StoreError(
                f"{self.path} has schema version {version} but this wan-tui knows only up to "
                f"{latest}: upgrade wan-tui to open it"
            )

    async def _migrate(self) -> None:
        version = await self._user_version()
        self._refuse_newer(version)
        if version == len(schema.MIGRATIONS):
            return  # the usual case: no write lock needed just to open
        async with self._write() as db:
            # Read again under the write lock: another process may have migrated meanwhile.
            version = await self._user_version()
            self._refuse_newer(version)
            if 0 < version < len(schema.MIGRATIONS):
                # The way back if a migration (or the new wan-tui) turns out wrong. We hold
                # the write lock, so the copy is exactly the history as it is now.
                await asyncio.to_thread(files.backup_database, self.path,
                                        files.backup_path(self.path, version))
            for number in range(version + 1, len(schema.MIGRATIONS) + 1):
                for statement in schema.MIGRATIONS[number - 1]:
                    await db.execute(statement)
            if version < len(schema.MIGRATIONS):
                # user_version lives in the file header and is part of this transaction,
                # so a failed migration leaves both schema and number untouched.
                await db.execute(f"PRAGMA user_version = {len(schema.MIGRATIONS)}")

    def now(self) -> float:
        """The clock the store stamps rows with (updated_at, events)."""
        return self._clock()

    async def close(self) -> None:
        if self._db is None:
            return
        async with self._lock:
            db, self._db = self._db, None
            try:
                await db.execute("PRAGMA optimize")  # keeps query plans good as history grows
            except sqlite3.Error:
                pass  # only an optimisation (it may find the other process writing)
            finally:
                await db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ transactions

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the history database is closed")
        return self._db

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction, committed before the block's caller gets control back.

        IMMEDIATE takes the write lock at BEGIN, so a second process waits (busy_timeout)
        instead of failing halfway when a read lock cannot be upgraded.
        """
        async with self._lock:
            db = self._conn()
            try:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    await db.execute("COMMIT")
                except BaseException:
                    # Runs after any statement still in flight on the connection's thread;
                    # a no-op if COMMIT already went through.
                    await db.rollback()
                    raise
            except sqlite3.Error as exc:
                raise StoreError(files.io_problem(self.path, "write", exc)) from exc

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._lock:
            try:
                return list(await self._conn().execute_fetchall(sql, params))
            except sqlite3.Error as exc:
                raise StoreError(files.io_problem(self.path, "read", exc)) from exc

    @staticmethod
    async def _job_in(db: aiosqlite.Connection, job_id: int) -> Job | None:
        rows = await db.execute_fetchall(f"{_SELECT_JOB} WHERE id = ?", (job_id,))
        return next((_job_from_row(row) for row in rows), None)

    @staticmethod
    async def _next_id(db: aiosqlite.Connection) -> int:
        # Under the write lock this is exactly the id AUTOINCREMENT would hand out next;
        # giving ids explicitly lets a batch insert know its ids without a query per row.
        rows = await db.execute_fetchall(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0),"
            " coalesce((SELECT max(id) FROM jobs), 0))"
        )
        return int(next(iter(rows))[0]) + 1

    # ------------------------------------------------------------ writing jobs

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
        async with self._write() as db:
            first = await self._next_id(db)
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
                )
                for i, (req, quote, estimate, source) in enumerate(
                    zip(requests, quotes, estimates, origins, strict=True))
            ]
            await db.executemany(_INSERT_JOB, map(_row_for, jobs))
            await db.executemany(
                _INSERT_EVENT,
                ((job.id, now, JobState.PENDING.value, "recorded, not yet sent") for job in jobs),
            )
            # Read back so callers hold exactly what get() would return.
            rows = await db.execute_fetchall(f"{_SELECT_JOB} WHERE id >= ? ORDER BY id", (first,))
            return [_job_from_row(row) for row in rows]

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
        values = _settable(fields)
        expected = None if expect is None else _states(expect)
        async with self._write() as db:
            current = await self._job_in(db, job_id)
            if current is None and expected is None:
                raise StoreError(f"there is no job {job_id}")
            if current is None or (expected is not None and current.state not in expected):
                return None
            check_transition(current.state, new)
            now = self._clock()
            values.update(state=new.value, updated_at=now)
            # Compare-and-set on the state we just read: belt and braces on top of the
            # IMMEDIATE lock, so a claim can never succeed twice.
            changed = await self._set(db, job_id, values, only_if_state=current.state)
            if not changed:
                return None
            await db.execute(_INSERT_EVENT, (job_id, now, new.value, detail))
            return await self._job_in(db, job_id)

    async def update(self, job_id: int, *, event: str | None = None, **fields: Any) -> Job:
        """Change fields without a state change; log an event only when `event` is given."""
        values = _settable(fields)
        async with self._write() as db:
            current = await self._job_in(db, job_id)
            if current is None:
                raise StoreError(f"there is no job {job_id}")
            now = self._clock()
            values["updated_at"] = now
            await self._set(db, job_id, values)
            if event is not None:
                await db.execute(_INSERT_EVENT, (job_id, now, current.state.value, event))
            job = await self._job_in(db, job_id)
            assert job is not None  # we hold the write lock and just read it
            return job

    async def set_pick(self, job_id: int, pick: str | None) -> Job:
        """Star, reject or clear (None) a job's pick, stamped with the time; the timeline
        gets a line, so the history says when a take was kept or set aside."""
        check_pick(pick)
        return await self.update(job_id, pick=pick, picked_at=self._clock(),
                                 event=f"picked: {pick}" if pick else "pick cleared")

    @staticmethod
    async def _set(
        db: aiosqlite.Connection,
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
        async with db.execute(sql, params) as cursor:
            return cursor.rowcount == 1

    async def bulk_insert_for_benchmark(self, jobs: Sequence[Job]) -> None:
        """Seed fully-formed jobs (any state) plus one event each, in one transaction.

        For benchmarks and tests that need large histories. The ids in `jobs` are ignored:
        the database hands out fresh ones in order.
        """
        async with self._write() as db:
            first = await self._next_id(db)
            # The per-row FTS trigger makes a 100 000-row insert ~20x slower than indexing
            # the new rows in one statement. Dropping it here is invisible to everyone else:
            # we hold the write lock and it comes back, as it was, in this transaction.
            rows = await db.execute_fetchall(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'jobs_fts_insert'"
            )
            trigger_sql = next(iter(rows))[0]
            await db.execute("DROP TRIGGER jobs_fts_insert")
            # Fresh ids patched into the rows: a copy of each Job (`with_`) costs a second here.
            await db.executemany(_INSERT_JOB, ((first + i, *_row_for(job)[1:])
                                               for i, job in enumerate(jobs)))
            await db.execute(
                "INSERT INTO jobs_fts (rowid, prompt) SELECT id, prompt FROM jobs WHERE id >= ?",
                (first,),
            )
            await db.execute(trigger_sql)
            await db.executemany(
                _INSERT_EVENT,
                ((first + i, job.updated_at, job.state.value, "seeded")
                 for i, job in enumerate(jobs)),
            )

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
        async with self._write() as db:
            fresh: list[tuple[Job, str]] = []
            seen: set[tuple[str, str]] = set()
            for job, detail in zip(jobs, details, strict=True):
                if job.remote_id:
                    key = (job.provider, job.remote_id)
                    rows = await db.execute_fetchall(
                        "SELECT 1 FROM jobs WHERE remote_id = ? AND provider = ? LIMIT 1", key)
                    if key in seen or list(rows):
                        continue
                    seen.add(key)
                fresh.append((job, detail))
            if not fresh:
                return []
            first = await self._next_id(db)
            new_id = {job.id: first + i for i, (job, _) in enumerate(fresh)}
            batch_of: dict[int, int] = {}  # an old batch id -> its first imported job's id
            for job, _ in fresh:
                if job.batch_id is not None:
                    batch_of.setdefault(job.batch_id, new_id[job.id])
            added = [job.with_(id=new_id[job.id],
                               batch_id=batch_of.get(job.batch_id) if job.batch_id else None,
                               source_id=new_id.get(job.source_id) if job.source_id else None)
                     for job, _ in fresh]
            await db.executemany(_INSERT_JOB, map(_row_for, added))
            await db.executemany(_INSERT_EVENT, ((job.id, job.updated_at, job.state.value,
                                                  detail)
                                                 for job, (_, detail) in zip(added, fresh,
                                                                             strict=True)))
            rows = await db.execute_fetchall(f"{_SELECT_JOB} WHERE id >= ? ORDER BY id", (first,))
            return [_job_from_row(row) for row in rows]

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
        where, params = _where(query)
        direction = " DESC" if descending else ""
        keys = ", ".join(key + direction for key in _ORDER[order])
        sql = f"{_SELECT_JOB}{where} ORDER BY {keys} LIMIT ? OFFSET ?"
        rows = await self._read(sql, [*params, -1 if limit is None else limit, offset])
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
        where, params = _where(query)
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
        where, params = _where(query)
        rows = await self._read(f"SELECT count(*) FROM jobs{where}", params)
        return int(rows[0][0])

    async def batches(self, limit: int = 50, batch: int | None = None) -> list[BatchStats]:
        """The newest `limit` batches (or just `batch`), newest first."""
        chosen = ("SELECT ? AS b" if batch is not None else
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
        async with self._write() as db:
            await db.execute(
                "INSERT INTO models_cache (provider, fetched_at, models_json) VALUES (?, ?, ?)"
                " ON CONFLICT (provider) DO UPDATE"
                " SET fetched_at = excluded.fetched_at, models_json = excluded.models_json",
                (provider, self._clock(), text),
            )

    # ------------------------------------------------------------ requests to the engine

    async def post_request(self, kind: str, job_id: int | None = None) -> int:
        """A window asks the engine for an action; returns the request's id."""
        async with self._write() as db:
            cur = await db.execute(
                "INSERT INTO requests (kind, job_id, created_at) VALUES (?, ?, ?)",
                (kind, job_id, self._clock()))
            return int(cur.lastrowid or 0)

    async def take_requests(self, pid: int) -> list[EngineRequest]:
        """Claim every open request for this engine, in order, in one commit.

        Requests a dead engine had taken but not finished are claimed again: every kind is
        idempotent (cancelling a cancelled job, deleting deleted media), so carrying one
        out a second time after a crash changes nothing."""
        async with self._write() as db:
            rows = await db.execute_fetchall(
                "SELECT id, kind, job_id, created_at FROM requests"
                " WHERE state = 'new' OR (state = 'taken' AND taken_by != ?) ORDER BY id",
                (pid,))
            await db.executemany("UPDATE requests SET state = 'taken', taken_by = ? WHERE id = ?",
                                 [(pid, row[0]) for row in rows])
        return [EngineRequest(int(r[0]), str(r[1]), r[2], float(r[3])) for r in rows]

    async def finish_request(self, request_id: int, ok: bool, result: str) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE requests SET state = ?, result = ?, finished_at = ? WHERE id = ?",
                ("done" if ok else "failed", result, self._clock(), request_id))

    async def request_outcome(self, request_id: int) -> tuple[str, str | None, float | None]:
        """(state, result, finished_at) of a request: 'new', 'taken', 'done' or 'failed'."""
        rows = await self._read(
            "SELECT state, result, finished_at FROM requests WHERE id = ?", (request_id,))
        if not rows:
            raise StoreError(f"no request {request_id} in the history")
        return str(rows[0][0]), rows[0][1], rows[0][2]

    async def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap "anything new?" check."""
        rows = await self._read("PRAGMA data_version")
        return int(rows[0][0])

    async def changed_since(self, since: float) -> list[Job]:
        """Jobs whose row changed at or after `since` (another process's writes)."""
        rows = await self._read(f"{_SELECT_JOB} WHERE updated_at >= ? ORDER BY updated_at",
                                (since,))
        return [_job_from_row(row) for row in rows]

    async def get_meta(self, key: str) -> str | None:
        rows = await self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

