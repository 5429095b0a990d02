"""The history in an SQLite file: one person's wan-tui, the default.

WAL and synchronous=FULL: a committed transition survives power loss. A headless `watch`
and the engine may have the same file open: writes take the write lock up front (BEGIN
IMMEDIATE), so a second process waits instead of failing halfway.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from tui.jobs import Job

# Through the modules, not their names: a test appends a migration or plays a read-only
# file by setting tui.store.schema.MIGRATIONS or tui.store.files.read_only_reason.
from tui.store import files, schema
from tui.store.history import Row, Store, T, Tx
from tui.store.records import StoreError
from tui.store.rows import _INSERT_EVENT, _INSERT_JOB, SQLITE, _row_for


class _SqliteTx:
    """Tx on an aiosqlite connection."""

    def __init__(self, db: aiosqlite.Connection):
        self.db = db

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self.db.execute_fetchall(sql, params))

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self.db.execute(sql, params) as cursor:
            return cursor.rowcount

    async def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.db.executemany(sql, rows)


class SqliteStore(Store):
    """The history in one SQLite file (open_store(path))."""

    dialect = SQLITE
    path: Path

    def __init__(self, db: aiosqlite.Connection, path: Path, clock: Callable[[], float]):
        super().__init__(clock)
        self._db: aiosqlite.Connection | None = db
        self.path = path
        self.location = str(path)

    # ------------------------------------------------------------ opening and closing

    @classmethod
    async def open_file(cls, path: Path, *, clock: Callable[[], float] = time.time
                        ) -> SqliteStore:
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

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._lock:
            try:
                return list(await self._conn().execute_fetchall(sql, params))
            except sqlite3.Error as exc:
                raise StoreError(files.io_problem(self.path, "read", exc)) from exc

    async def _transact(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        async with self._write() as db:
            return await body(_SqliteTx(db))

    async def data_version(self) -> int:
        rows = await self._read("PRAGMA data_version")
        return int(rows[0][0])

    async def _next_ids(self, tx: Tx, count: int) -> int:
        # Under the write lock this is exactly the id AUTOINCREMENT would hand out next,
        # and the ids after it are free until we commit.
        rows = await tx.fetch(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0),"
            " coalesce((SELECT max(id) FROM jobs), 0))"
        )
        return int(next(iter(rows))[0]) + 1

    async def bulk_insert_for_benchmark(self, jobs: Sequence[Job]) -> None:
        """Seed fully-formed jobs (any state) plus one event each, in one transaction.

        For benchmarks and tests that need large histories. The ids in `jobs` are ignored:
        the database hands out fresh ones in order.
        """
        async with self._write() as db:
            first = await self._next_ids(_SqliteTx(db), len(jobs))
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
