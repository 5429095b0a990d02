"""The history database: the only module in wan-tui that writes SQL.

Every job costs real money, so every change is one short write transaction committed to
disk (WAL, synchronous=FULL) before the caller acts on it. `jobs` holds each job's current
state; `events` is the append-only log of how it got there; `jobs_fts` indexes prompts so a
search stays instant at 100 000 jobs. A headless `watch` and the dashboard may have the same
file open: writes take the write lock up front (BEGIN IMMEDIATE) and a claim such as
"pending -> submitting" is a compare-and-set, so two processes never both submit one job.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import aiosqlite

from tui.errors import WanError
from tui.jobs import ACTIVE_STATES, Job, JobRequest, JobState, VideoFacts, check_transition
from tui.query import JobQuery


class StoreError(WanError):
    """The database cannot do what was asked. The message is one line for a human."""


@dataclass(frozen=True)
class Spend:
    """Money over a period. `maybe_usd` is the quoted price of `unknown` jobs: the submit
    may have reached the provider, so it may have been charged; until the user settles
    them (`wan-tui resolve`) it counts, marked "maybe charged"."""

    charged_usd: float
    maybe_usd: float = 0.0
    maybe_jobs: int = 0

    @property
    def total_usd(self) -> float:
        return self.charged_usd + self.maybe_usd


@dataclass(frozen=True)
class BatchStats:
    """One batch (jobs recorded together) counted in SQL: how many in each state, the
    money committed (every job that is or may be charged, at its cost or quote) and
    delivered (jobs done), and its times."""

    batch_id: int
    counts: dict[JobState, int]
    committed_usd: float
    delivered_usd: float
    created_at: float
    first_submitted_at: float | None
    last_finished_at: float | None
    prompt: str  # its first job's, to recognise it by

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class EngineRequest:
    """An action a window asked of the engine (see Store.post_request)."""

    id: int
    kind: str  # "cancel" | "delete" | "stop"
    job_id: int | None
    created_at: float


@dataclass(frozen=True)
class Event:
    job_id: int
    at: float
    state: JobState  # the state after the event (unchanged for informational events)
    detail: str


# ------------------------------------------------------------------------------ schema

# "state" sorts in lifecycle order, which reads better than the alphabet. Spelled out, not
# generated from JobState: an index is built on this exact text, so changing it (a new
# state) takes a migration that recreates jobs_state_rank. A test checks it is complete.
_STATE_RANK = (
    "CASE state WHEN 'pending' THEN 0 WHEN 'submitting' THEN 1 WHEN 'queued' THEN 2"
    " WHEN 'processing' THEN 3 WHEN 'downloading' THEN 4 WHEN 'done' THEN 5"
    " WHEN 'failed' THEN 6 WHEN 'expired' THEN 7 WHEN 'cancelled' THEN 8"
    " WHEN 'unknown' THEN 9 END"
)

# MIGRATIONS[n - 1] brings the schema from version n-1 to n. Only ever append: a released
# migration is never edited, because databases out there already ran it.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        # AUTOINCREMENT: a job id is never reused, even after a purge, so a file or log
        # line naming job 42 can never be confused with a later job.
        # No CHECK on `state`: adding a state would then need a table rebuild;
        # tui.jobs validates every state before it gets here.
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt TEXT NOT NULL,
            request_json TEXT NOT NULL,
            state TEXT NOT NULL,
            remote_id TEXT,
            result_url TEXT,
            quote_usd REAL,
            cost_usd REAL,
            cost_is_estimate INTEGER NOT NULL DEFAULT 0,
            file TEXT,
            bytes INTEGER,
            sha256 TEXT,
            error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            submitted_at REAL,
            started_at REAL,
            ready_at REAL,
            finished_at REAL,
            estimate_s REAL,
            progress REAL,
            remote_deleted INTEGER NOT NULL DEFAULT 0
        )""",
        # created_at rides along so "these states, newest first" reads in index order.
        "CREATE INDEX jobs_state ON jobs(state, created_at)",
        # One index per list_jobs ordering (see _ORDER).
        "CREATE INDEX jobs_created ON jobs(created_at)",
        "CREATE INDEX jobs_updated ON jobs(updated_at)",
        f"CREATE INDEX jobs_state_rank ON jobs({_STATE_RANK}, created_at)",
        "CREATE INDEX jobs_model ON jobs(model, created_at)",
        "CREATE INDEX jobs_provider_model ON jobs(provider, model, created_at)",
        "CREATE INDEX jobs_cost ON jobs(cost_usd, created_at)",
        "CREATE INDEX jobs_submitted ON jobs(submitted_at)",  # spend_since
        "CREATE INDEX jobs_remote_id ON jobs(remote_id)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs(id),
            at REAL NOT NULL,
            state TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX events_job ON events(job_id, id)",
        # The event log is the audit trail of what was spent: refuse to rewrite it.
        """CREATE TRIGGER events_no_update BEFORE UPDATE ON events
           BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
        """CREATE TRIGGER events_no_delete BEFORE DELETE ON events
           BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
        # External content: the prompt text is stored once, in jobs; FTS keeps only the index.
        """CREATE VIRTUAL TABLE jobs_fts USING fts5(
            prompt, content='jobs', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER jobs_fts_insert AFTER INSERT ON jobs BEGIN
            INSERT INTO jobs_fts(rowid, prompt) VALUES (new.id, new.prompt);
        END""",
        """CREATE TRIGGER jobs_fts_delete AFTER DELETE ON jobs BEGIN
            INSERT INTO jobs_fts(jobs_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
        END""",
        # `OF prompt`: the frequent state/progress updates never touch the FTS index.
        """CREATE TRIGGER jobs_fts_update AFTER UPDATE OF prompt ON jobs BEGIN
            INSERT INTO jobs_fts(jobs_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
            INSERT INTO jobs_fts(rowid, prompt) VALUES (new.id, new.prompt);
        END""",
        """CREATE TABLE models_cache (
            provider TEXT PRIMARY KEY,
            fetched_at REAL NOT NULL,
            models_json TEXT NOT NULL
        )""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    (
        # Remote deletes promised by the user's setting survive a crash between "done"
        # and the delete call (the partial index stays tiny: few rows are ever pending).
        "ALTER TABLE jobs ADD COLUMN delete_pending INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX jobs_delete_pending ON jobs(id) WHERE delete_pending = 1",
    ),
    (
        # Jobs recorded in one add_jobs call are a batch, named by its first job's id
        # (NULL for jobs recorded before batches existed).
        "ALTER TABLE jobs ADD COLUMN batch_id INTEGER",
        "CREATE INDEX jobs_batch ON jobs(batch_id, created_at)",
    ),
    (
        # Actions that any wan-tui window asks of the one engine (cancel, delete, stop).
        # Durable, so a request survives the engine changing hands while it waits; claimed
        # with a conditional UPDATE, so it is carried out once (see Store.take_requests).
        """CREATE TABLE requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            job_id INTEGER,
            state TEXT NOT NULL DEFAULT 'new',
            taken_by INTEGER,
            result TEXT,
            created_at REAL NOT NULL,
            finished_at REAL
        )""",
        "CREATE INDEX requests_open ON requests(state) WHERE state IN ('new', 'taken')",
    ),
    (
        # What a downloaded video holds (tui.media.probe), as JSON: read with the row, never
        # searched, and its keys may grow without another migration.
        "ALTER TABLE jobs ADD COLUMN video TEXT",
        # sha256 -> times a whole copy with those bytes failed its check (JSON): the same
        # bytes failing three times settle the job, across restarts too.
        "ALTER TABLE jobs ADD COLUMN rejects TEXT NOT NULL DEFAULT '{}'",
    ),
]

# Job fields stored in a column of the same name; id, request and state are handled apart.
_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(Job) if f.name not in ("id", "request", "state")
)
_COLUMNS: tuple[str, ...] = ("id", "provider", "model", "prompt", "request_json", "state", *_FIELDS)
_BOOL_FIELDS = frozenset({"cost_is_estimate", "remote_deleted", "delete_pending"})
_JSON_FIELDS = frozenset({"video", "rejects"})
# What transition()/update() may set; the timestamps of the row itself are the store's job.
_SETTABLE = frozenset(_FIELDS) - {"created_at", "updated_at"}

_INSERT_JOB = f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_INSERT_EVENT = "INSERT INTO events (job_id, at, state, detail) VALUES (?, ?, ?, ?)"
_SELECT_JOB = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
# The states of jobs the engine still owns, as an SQL list for `state IN (...)`.
_ACTIVE_SQL = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATES))

# id ends every sort so paging with OFFSET never shows a row twice or skips one; each
# ordering has an index with the same columns (rowid is implicitly last), so a page of
# 50 out of 100 000 is read in index order instead of sorting the whole table.
_ORDER: dict[str, tuple[str, ...]] = {
    "created": ("created_at", "id"),
    "updated": ("updated_at", "id"),
    "state": (_STATE_RANK, "created_at", "id"),
    "model": ("model", "created_at", "id"),
    "provider": ("provider", "model", "created_at", "id"),
    "cost": ("cost_usd", "created_at", "id"),
}

# The same orderings as row values that compare the way ORDER BY sorts them, for counting
# the rows before a job. A row-value comparison with NULL is NULL, so cost_usd (the one
# nullable sort column) splits into "has a cost" and the cost: NULL sorts first.
_ORDER_KEY: dict[str, tuple[str, ...]] = {
    **_ORDER,
    "cost": ("cost_usd IS NOT NULL", "coalesce(cost_usd, 0)", "created_at", "id"),
}

# ------------------------------------------------------------------ row <-> Job, queries


# Where things are in a row read with _SELECT_JOB (by position: a lookup by name costs
# more than the rest of making the Job). The job's own fields run in order to the end.
_ID, _REQUEST, _STATE = (_COLUMNS.index(name) for name in ("id", "request_json", "state"))
_FIRST_FIELD = _COLUMNS.index(_FIELDS[0])


@lru_cache(maxsize=8192)
def _stored_request(text: str) -> JobRequest:
    """The request a row holds. A request never changes once recorded, and a window read
    makes Jobs again for the same rows at every jump: one parse per request text (the
    dashboard's filter ⏎ spent a third of its 200-row read here). JobRequest is frozen and
    nothing changes its options in place, so sharing one is safe."""
    return JobRequest.from_stored(text)


def _job_from_row(row: sqlite3.Row) -> Job:
    values = dict(zip(_FIELDS, row[_FIRST_FIELD:], strict=True))
    for name in _BOOL_FIELDS:
        values[name] = bool(values[name])
    video = values["video"]
    values["video"] = VideoFacts.from_dict(json.loads(video)) if video else None
    rejects = values["rejects"]
    values["rejects"] = json.loads(rejects) if rejects and rejects != "{}" else {}
    return Job(
        id=row[_ID],
        request=_stored_request(row[_REQUEST]),
        state=JobState(row[_STATE]),
        **values,
    )


def _column_value(name: str, value: Any) -> Any:
    if name in _BOOL_FIELDS:
        return int(bool(value))
    if name in _JSON_FIELDS:
        if isinstance(value, VideoFacts):
            value = value.to_dict()
        return None if value is None else json.dumps(value, sort_keys=True)
    if value is None or type(value) in (str, float, int):  # the common case, without an ABC check
        return value
    if isinstance(value, os.PathLike):  # `file` may arrive as a Path
        return os.fspath(value)
    return value


def _row_for(job: Job) -> tuple[Any, ...]:
    req = job.request
    head = (job.id, req.provider, req.model, req.prompt, req.to_json(), job.state.value)
    return head + tuple(_column_value(name, getattr(job, name)) for name in _FIELDS)


def _settable(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - _SETTABLE
    if unknown:
        raise TypeError(f"not a settable job field: {', '.join(sorted(unknown))}")
    return {name: _column_value(name, value) for name, value in values.items()}


def fts_query(text: str) -> str | None:
    """Turn what a user typed into an FTS5 query that cannot be a syntax error.

    Each word becomes a quoted prefix term (`"word"*`), so `"`, `-`, `:`, `AND`, `NEAR`
    and friends are plain text; the terms are ANDed. Words without a letter or digit
    would be empty phrases that match nothing, so they are dropped; None means no word
    was left to search for. NUL would end the query string early inside SQLite: it is a
    separator here.
    """
    terms = [
        '"' + word.replace('"', '""') + '"*'
        for word in text.replace("\x00", " ").split()
        if any(ch.isalnum() for ch in word)
    ]
    return " AND ".join(terms) or None


def _states(states: Iterable[JobState] | JobState) -> set[JobState]:
    # JobState is a str: iterating a lone state would yield its letters.
    if isinstance(states, str):
        return {JobState(states)}
    return {JobState(s) for s in states}


def _glob_prefix(value: str) -> str:
    # GLOB is case-sensitive, so it can use the model index; its own wildcards are escaped.
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in value) + "*"


def _where(q: JobQuery | None) -> tuple[str, list[Any]]:
    q = q or JobQuery()
    clauses: list[str] = []
    params: list[Any] = []
    if q.states is not None:
        wanted = sorted(s.value for s in _states(q.states))
        clauses.append(f"state IN ({', '.join('?' * len(wanted))})" if wanted else "0")
        params += wanted
    if q.provider is not None:
        clauses.append("provider = ?")
        params.append(q.provider)
    if q.model is not None:  # `model:wan` finds every wan model: the id's start is enough
        clauses.append("model GLOB ?")
        params.append(_glob_prefix(q.model))
    if q.batch is not None:
        clauses.append("batch_id = ?")
        params.append(q.batch)
    query = fts_query(q.text) if q.text is not None else None
    if query is not None:
        clauses.append("id IN (SELECT rowid FROM jobs_fts WHERE jobs_fts MATCH ?)")
        params.append(query)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _create_private(path: Path) -> None:
    # Prompts are the user's own business: the file (and the -wal/-shm files SQLite
    # creates with the same mode) is readable by its owner alone.
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def read_only_reason(path: Path) -> str | None:
    """Why the history at `path` cannot be written, or None. SQLite needs to write the
    file and create `-wal`/`-shm` beside it, so the folder counts too. os.access answers
    for root as well on a read-only mount (EROFS)."""
    folder = path.parent
    if folder.exists() and not os.access(folder, os.W_OK):
        return f"its folder {folder} is read-only"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    return None


def open_problem(path: Path, exc: BaseException) -> str:
    """One line for a history that will not open: what is wrong and the way out."""
    read_only = read_only_reason(path)
    if read_only is not None:
        return (f"history {path} cannot be written ({read_only}): make it writable, or set "
                "WAN_TUI_HOME to a writable folder (`wan-tui doctor` checks it)")
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return (f"{path} is not a usable wan-tui database ({exc}): run `wan-tui doctor` to "
                "see how to recover it")
    return f"cannot open {path}: {exc} (`wan-tui doctor` checks the history)"


def io_problem(path: Path, what: str, exc: sqlite3.Error) -> str:
    """One line for a read or write that failed on an open history, with the way out."""
    read_only = read_only_reason(path)
    if read_only is not None or "readonly" in str(exc):
        return (f"history {path} cannot be written ({read_only or exc}): make it writable, "
                "or set WAN_TUI_HOME to a writable folder")
    if "disk is full" in str(exc):
        return (f"history {path}: the disk is full; free some space there (nothing "
                "already recorded is lost)")
    if "malformed" in str(exc) or "not a database" in str(exc):
        return (f"history {path} is damaged ({exc}): run `wan-tui doctor` to see how to "
                "recover it")
    return f"history database {what} failed: {exc} (`wan-tui doctor` checks the history)"


def backup_path(path: Path, version: int) -> Path:
    """Where the copy taken before migrating from schema `version` goes."""
    return path.with_name(f"{path.name}.v{version}.bak")


def backup_database(source: Path, dest: Path) -> None:
    """A consistent copy of `source` (WAL included) at `dest`, readable by its owner only;
    written beside it and renamed, so `dest` is always a whole database. Runs in a thread
    on its own connection (a WAL reader, so the caller may hold the write lock)."""
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        tmp.unlink(missing_ok=True)
        _create_private(tmp)
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            out = sqlite3.connect(tmp)
            try:
                src.backup(out)
            finally:
                out.close()
        finally:
            src.close()
        os.replace(tmp, dest)
    except (OSError, sqlite3.Error) as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise StoreError(
            f"cannot back up {source} to {dest} before upgrading its schema ({exc}); nothing "
            f"was changed: free space in {dest.parent} or make it writable, then try again"
        ) from exc


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
        if read_only_reason(path) is not None:
            # Said up front, once: every command writes sooner or later, and a failure then
            # would come from deep inside (one per job) instead of this one line.
            raise StoreError(open_problem(path, sqlite3.OperationalError("read-only")))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(path)
            db = await aiosqlite.connect(path, isolation_level=None)  # we issue BEGIN ourselves
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(open_problem(path, exc)) from exc
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
            raise StoreError(open_problem(self.path, exc)) from exc

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
        latest = len(MIGRATIONS)
        if version > latest:
            raise StoreError(
                f"{self.path} has schema version {version} but this wan-tui knows only up to "
                f"{latest}: upgrade wan-tui to open it"
            )

    async def _migrate(self) -> None:
        version = await self._user_version()
        self._refuse_newer(version)
        if version == len(MIGRATIONS):
            return  # the usual case: no write lock needed just to open
        async with self._write() as db:
            # Read again under the write lock: another process may have migrated meanwhile.
            version = await self._user_version()
            self._refuse_newer(version)
            if 0 < version < len(MIGRATIONS):
                # The way back if a migration (or the new wan-tui) turns out wrong. We hold
                # the write lock, so the copy is exactly the history as it is now.
                await asyncio.to_thread(backup_database, self.path, backup_path(self.path,
                                                                                version))
            for number in range(version + 1, len(MIGRATIONS) + 1):
                for statement in MIGRATIONS[number - 1]:
                    await db.execute(statement)
            if version < len(MIGRATIONS):
                # user_version lives in the file header and is part of this transaction,
                # so a failed migration leaves both schema and number untouched.
                await db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

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
                raise StoreError(io_problem(self.path, "write", exc)) from exc

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._lock:
            try:
                return list(await self._conn().execute_fetchall(sql, params))
            except sqlite3.Error as exc:
                raise StoreError(io_problem(self.path, "read", exc)) from exc

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
    ) -> list[Job]:
        """Record requests as pending jobs, all or none, in one commit, before any is sent.

        `cost_is_estimate`: one flag for all, or one per request (a mixed batch has real
        quotes and table estimates side by side)."""
        requests = list(requests)
        quotes = [None] * len(requests) if quotes is None else list(quotes)
        if len(quotes) != len(requests):
            raise ValueError(f"{len(requests)} requests but {len(quotes)} quotes")
        estimates = ([cost_is_estimate] * len(requests) if isinstance(cost_is_estimate, bool)
                     else list(cost_is_estimate))
        if len(estimates) != len(requests):
            raise ValueError(f"{len(requests)} requests but {len(estimates)} estimate flags")
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
                )
                for i, (req, quote, estimate) in enumerate(
                    zip(requests, quotes, estimates, strict=True))
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


# ------------------------------------------------------------------------------ doctor


@dataclass(frozen=True)
class Finding:
    """One line of `wan-tui doctor`: what was checked, whether it is fine, what to do."""

    ok: bool
    text: str
    fix: str = ""


def _recovery_steps(path: Path) -> str:
    backups = sorted(path.parent.glob(f"{path.name}.v*.bak"), key=lambda p: p.stat().st_mtime)
    restore = (f"restore the newest backup (`cp {backups[-1]} {path}`), or " if backups
               else "")
    return (f"stop every wan-tui, keep the damaged file (`mv {path} {path}.broken`), then "
            f"{restore}salvage what is readable (`sqlite3 {path}.broken .recover | sqlite3 "
            f"{path}`); with neither, wan-tui starts a new, empty history")


def check_history(path: Path) -> list[Finding]:
    """Examine the history without changing it (read-only; no migration, no WAL switch)."""
    path = Path(path).expanduser()
    if not path.exists():
        return [Finding(True, f"history {path} does not exist yet (created on first use)")]
    out: list[Finding] = []
    try:
        with path.open("rb") as fh:
            header = fh.read(20)
    except OSError as exc:
        return [Finding(False, f"history {path} cannot be read ({exc.strerror or exc})",
                        f"check its owner and permissions (`ls -l {path}`)")]
    if header and header[:16] != b"SQLite format 3\x00":
        return [Finding(False, f"history {path} is not an SQLite database (damaged or "
                        "overwritten)", _recovery_steps(path))]
    reason = read_only_reason(path)
    out.append(Finding(reason is None, f"history {path} is writable" if reason is None
                       else f"history {path} cannot be written: {reason}",
                       "" if reason is None else
                       "make it writable (`chmod u+w`, or remount read-write), or set "
                       "WAN_TUI_HOME to a writable folder"))
    # mode=ro needs to create -shm in a WAL database's folder; immutable reads the file
    # as it is, which is all a read-only folder allows.
    conn = None
    for uri in (f"file:{path}?mode=ro", f"file:{path}?immutable=1"):
        try:
            conn = sqlite3.connect(uri, uri=True)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            break
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            conn = None
            error = exc
    if conn is None:
        out.append(Finding(False, f"history {path} cannot be opened ({error})",
                           _recovery_steps(path)))
        return out
    try:
        # Bytes 18-19 of the header are 2 in WAL mode: read there, since a read-only
        # (immutable) connection reports "delete" whatever the file says.
        out += _check_open_history(conn, path, wal=header[18:20] == b"\x02\x02")
    except sqlite3.Error as exc:
        out.append(Finding(False, f"history {path} cannot be read ({exc})",
                           _recovery_steps(path)))
    finally:
        conn.close()
    return out


def _check_open_history(conn: sqlite3.Connection, path: Path, *, wal: bool
                        ) -> list[Finding]:
    out: list[Finding] = []
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check(5)")]
    if problems == ["ok"]:
        out.append(Finding(True, "integrity check passed"))
    else:
        out.append(Finding(False, f"integrity check failed: {'; '.join(problems)[:300]}",
                           _recovery_steps(path)))
        return out
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    latest = len(MIGRATIONS)
    if version > latest:
        out.append(Finding(False, f"schema version {version} is newer than this wan-tui "
                           f"knows ({latest})", "upgrade wan-tui to open it"))
    elif version < latest:
        out.append(Finding(True, f"schema version {version}: upgraded to {latest} on next "
                           f"use (a copy is kept as {backup_path(path, version).name})"))
    else:
        out.append(Finding(True, f"schema version {version} (current)"))
    if version and not wal:
        out.append(Finding(False, "journal mode is not WAL",
                           "open it once with wan-tui on a writable folder (it switches "
                           "to WAL by itself)"))
    elif version:
        out.append(Finding(True, "journal mode wal"))
    if version:
        rows = dict(conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        unknown = rows.get(JobState.UNKNOWN.value, 0)
        out.append(Finding(unknown == 0, f"{sum(rows.values())} jobs, {unknown} unknown "
                           "(maybe charged)",
                           "" if not unknown else "check each on the provider, then "
                           "`wan-tui resolve ID --charged` or `--not-charged` "
                           "(`wan-tui list --state unknown` lists them)"))
    backups = sorted(p.name for p in path.parent.glob(f"{path.name}.v*.bak"))
    if backups:
        out.append(Finding(True, f"backups before migrations: {', '.join(backups)}"))
    return out
