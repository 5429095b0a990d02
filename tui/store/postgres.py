"""The history in PostgreSQL: a team's wan-tui, every machine on one database.

Driver: psycopg 3 (psycopg[binary] from PyPI). Why it and not asyncpg: it is libpq, so every
libpq setting passes through untouched (sslmode, sslrootcert, service files, PGPASSWORD and
~/.pgpass, target_session_attrs...), which is what a team's DBA hands out; it has a native
asyncio connection, LISTEN/NOTIFY as an async iterator (`conn.notifies()`), and pipeline
mode, which executemany uses, so a 500-job batch is one round trip, not 500.

One connection per Store for statements (behind the Store's lock, as with SQLite) and one
that only LISTENs, so a window learns of another machine's commit at once. A connection the
server drops (restart, pg_terminate_backend, a network cut) is made again by itself; a
transaction that had not reached COMMIT is run again on the new one, one whose COMMIT got
no answer is not (it may have committed): that write fails in one line instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors

from tui.config import machine_name
from tui.store import schema
from tui.store.history import Row, Store, T, Tx
from tui.store.records import ConnectionLost, StoreError
from tui.store.rows import POSTGRES

log = logging.getLogger("wan_tui.store")

CHANNEL = "wan_tui"
# The payload of a commit that may give an engine work (schema.PG_MIGRATIONS[10]): a job
# recorded, claimed or given back, put back to pending or made active again, a request
# posted. Every other notice on CHANNEL names the table it changed (what windows show).
WORK = "work"
# The server's wall clock in epoch seconds (clock_timestamp(): now, not when the
# transaction began); PostgresStore and the doctor measure this machine's offset by it.
SERVER_CLOCK_SQL = "SELECT extract(epoch FROM clock_timestamp())::float8"
# How long a statement waits for a dropped server to come back (a restart takes seconds).
RECONNECT_PATIENCE_S = 30.0
# A statement is tried at most this often (a server that keeps dropping us, a deadlock that
# keeps recurring) before its failure is the caller's, in one line.
_ATTEMPTS = 5
_ADVISORY_IDS = 0x7761_6E01  # pg_advisory_xact_lock keys: "wan" + 1 (ids), + 2 (migrations)
_ADVISORY_MIGRATE = 0x7761_6E02
# The shared rate budget's locks: pg_advisory_xact_lock(this, hashtext(key and class)). The
# two-key form's space does not overlap the one-key form's above.
_ADVISORY_RATE = 0x7761_6E04


def clock_offset(server: float, before: float, after: float) -> float:
    """How far the server's clock (read between `before` and `after` here) is ahead of
    this machine's: off by at most half the round trip."""
    return server - (before + after) / 2


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ***: what logs, errors and `doctor` show."""
    if dsn.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hosts = netloc.rpartition("@")
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{hosts}"
        query = urlencode([(k, "***" if k == "password" else v)
                           for k, v in parse_qsl(parts.query, keep_blank_values=True)],
                          safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)


def dsn_password(dsn: str) -> str | None:
    """The password written in the DSN itself, if any (to scrub from error text)."""
    with contextlib.suppress(psycopg.Error):
        return psycopg.conninfo.conninfo_to_dict(dsn).get("password") or None  # type: ignore[return-value]
    return None


@lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    """The store's `?` placeholders as psycopg's %s (a literal % doubled first)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PgTx:
    """Tx on a psycopg connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]):
        self.conn = conn

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = await self.conn.execute(_pg_sql(sql), params)
        return list(await cur.fetchall()) if cur.description else []

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = await self.conn.execute(_pg_sql(sql), params)
        return cur.rowcount

    async def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            async with self.conn.cursor() as cur:
                await cur.executemany(_pg_sql(sql), rows)


def _one_line(exc: BaseException, secret: str | None) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.replace(secret, "***") if secret else text


def _is_connection_loss(exc: BaseException, conn: psycopg.AsyncConnection[Any] | None) -> bool:
    return isinstance(exc, psycopg.OperationalError) and (
        conn is None or conn.closed or conn.broken
        or isinstance(exc, pg_errors.AdminShutdown | pg_errors.CannotConnectNow))


class PostgresStore(Store):
    """The history in a PostgreSQL database (open_store("postgresql://...")). The DSN is
    held in memory only; everything shown says `location` (password masked)."""

    dialect = POSTGRES

    def __init__(self, dsn: str, clock: Callable[[], float]):
        # Real time is the server's: every machine's leases, heartbeats and row times are
        # then read on one clock, whatever a machine's own says (a laptop 40 s fast would
        # otherwise take every other engine's leases for run out). A given clock (tests,
        # benchmarks) is used as it is.
        super().__init__(self._server_time if clock is time.time else clock)
        self._dsn = dsn
        self._secret = dsn_password(dsn)
        self.location = mask_dsn(dsn)
        self.machine = machine_name()
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._closed = False
        self._version = 0  # other connections' commits seen (NOTIFY), see data_version
        self._work = 0  # ...of which those that may give an engine work, see work_version
        self._changed = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self.reconnects = 0  # statement connections made again after a loss (doctor, tests)
        self.patience_s = RECONNECT_PATIENCE_S

    # ------------------------------------------------------------ opening and closing

    @classmethod
    async def connect(cls, dsn: str, *, clock: Callable[[], float] = time.time
                      ) -> PostgresStore:
        store = cls(dsn, clock)
        store._conn = await store._connect(patience_s=0.0)
        try:
            await store._migrate()
            store._listener = asyncio.create_task(store._listen(), name="wan-tui listen")
            # Listening before open() returns: a commit made right after is never missed.
            await asyncio.wait_for(store._listening.wait(), timeout=10)
        except BaseException:
            await store.close()
            raise
        return store

    def _server_time(self) -> float:
        return time.time() + self.clock_offset

    async def sync_clock(self) -> float:
        """Measure how far the server's clock is ahead of this machine's (one round trip;
        off by at most half of it) and read time on it from now on. The offset."""
        async with self._lock:
            conn = self._live()
            try:
                await self._measure_offset(conn)
            except psycopg.Error as exc:  # kept as it was: the next connection measures
                log.info("server clock not read: %s", _one_line(exc, self._secret))
        return self.clock_offset

    async def _measure_offset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        before = time.time()
        row = await (await conn.execute(SERVER_CLOCK_SQL)).fetchone()
        if row is not None:
            self.clock_offset = clock_offset(float(row[0]), before, time.time())

    async def _connect(self, patience_s: float) -> psycopg.AsyncConnection[Any]:
        deadline = time.monotonic() + patience_s
        delay = 0.05
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, application_name="wan-tui",
                    connect_timeout=10)
                try:
                    await self._measure_offset(conn)
                except psycopg.Error:
                    await conn.close()
                    raise
                return conn
            except psycopg.Error as exc:
                if self._closed or time.monotonic() >= deadline:
                    raise ConnectionLost(
                        f"cannot connect to the history database {self.location} "
                        f"({_one_line(exc, self._secret)}): check WAN_TUI_DATABASE (or "
                        "`database` in the config), that the server is running, and the "
                        "role's password (PGPASSWORD or ~/.pgpass); `wan-tui doctor` checks "
                        "it") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    await conn.close()

    # ------------------------------------------------------------ schema

    async def schema_version(self) -> int:
        rows = await self._read(
            "SELECT coalesce((SELECT version FROM wan_tui_schema LIMIT 1), 0)")
        return int(rows[0][0])

    async def _migrate(self) -> None:
        latest = len(schema.PG_MIGRATIONS)

        async def body(tx: Tx) -> None:
            # Every engine of a team may start at once: one migrates, the others wait here
            # and then find nothing left to do.
            await tx.fetch("SELECT pg_advisory_xact_lock(?)", (_ADVISORY_MIGRATE,))
            await tx.run("CREATE TABLE IF NOT EXISTS wan_tui_schema (version INTEGER NOT NULL)")
            rows = await tx.fetch("SELECT version FROM wan_tui_schema")
            if not rows:
                await tx.run("INSERT INTO wan_tui_schema (version) VALUES (0)")
            version = int(rows[0][0]) if rows else 0
            if version > latest:
                raise StoreError(
                    f"{self.location} has schema version {version} but this wan-tui knows "
                    f"only up to {latest}: upgrade wan-tui on this machine")
            # DDL is transactional here: a failed migration leaves schema and number as
            # they were, so no copy is taken first (the server's backups are the DBA's).
            for number in range(version + 1, latest + 1):
                for statement in schema.PG_MIGRATIONS[number - 1]:
                    await tx.run(statement)
            if version < latest:
                await tx.run("UPDATE wan_tui_schema SET version = ?", (latest,))

        await self._transact(body)

    # ------------------------------------------------------------ transactions

    def _live(self) -> psycopg.AsyncConnection[Any]:
        if self._closed or self._conn is None:
            raise StoreError("the history database is closed")
        return self._conn

    async def _reconnect(self) -> psycopg.AsyncConnection[Any]:
        old, self._conn = self._conn, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        log.warning("history database connection lost; connecting again to %s", self.location)
        self._conn = await self._connect(self.patience_s)
        self.reconnects += 1
        return self._conn

    def _problem(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(f"history database {what} failed on {self.location}: "
                          f"{_one_line(exc, self._secret)} (`wan-tui doctor` checks it)")

    async def _transact(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        async with self._lock:
            conn = self._live()
            for attempt in range(1, _ATTEMPTS + 1):
                committing = False
                try:
                    await conn.execute("BEGIN")
                    try:
                        result = await body(_PgTx(conn))
                        committing = True
                        await conn.execute("COMMIT")
                        return result
                    except BaseException:
                        if not conn.closed and not conn.broken:
                            with contextlib.suppress(psycopg.Error):
                                await conn.execute("ROLLBACK")
                        raise
                except psycopg.Error as exc:
                    if _is_connection_loss(exc, conn):
                        if committing:
                            # The COMMIT was sent and no answer came: it may have committed.
                            # Not run again (a claim would then be taken twice); the next
                            # statement finds a new connection.
                            with contextlib.suppress(StoreError):
                                await self._reconnect()
                            raise ConnectionLost(
                                f"the connection to {self.location} was lost while a change "
                                "was being committed; it may or may not have been saved "
                                "(`wan-tui show` tells)") from None
                        if attempt < _ATTEMPTS:
                            conn = await self._reconnect()  # nothing committed: run it again
                            continue
                    elif isinstance(exc, pg_errors.DeadlockDetected
                                    | pg_errors.SerializationFailure) and attempt < _ATTEMPTS:
                        continue  # rolled back whole: run it again
                    raise self._problem("write", exc) from None
            raise AssertionError("unreachable: the last attempt returns or raises")

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._lock:
            conn = self._live()
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    return await _PgTx(conn).fetch(sql, params)
                except psycopg.Error as exc:
                    if _is_connection_loss(exc, conn) and attempt < _ATTEMPTS:
                        conn = await self._reconnect()
                        continue
                    raise self._problem("read", exc) from None
            raise AssertionError("unreachable: the last attempt returns or raises")

    async def _next_ids(self, tx: Tx, count: int) -> int:
        # Consecutive ids for a batch (its id is its first job's): the sequence is moved
        # by `count` under a lock every id-taker holds until commit. nextval is never
        # rolled back, so an id is never handed out twice, even after a failed insert.
        await tx.fetch("SELECT pg_advisory_xact_lock(?)", (_ADVISORY_IDS,))
        rows = await tx.fetch("SELECT nextval('jobs_id_seq')")
        first = int(rows[0][0])
        if count > 1:
            await tx.fetch("SELECT setval('jobs_id_seq', ?)", (first + count - 1,))
        return first

    async def _serialise_rate_key(self, tx: Tx, key_id: str, rate_class: str) -> None:
        # Takers of one key wait here for each other until commit; other keys do not.
        await tx.fetch("SELECT pg_advisory_xact_lock(?, hashtext(?))",
                       (_ADVISORY_RATE, f"{key_id}/{rate_class}"))

    # ------------------------------------------------------------ other connections' commits

    async def _listen(self) -> None:
        """Count other connections' commits (NOTIFY wan_tui), and apart those that may give
        an engine work (payload WORK), across lost connections."""
        delay = 0.05
        while not self._closed:
            conn = None
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, application_name="wan-tui listen",
                    connect_timeout=10)
                await conn.execute(f"LISTEN {CHANNEL}")
                if self._listening.is_set():
                    # Notices sent while we were away are lost: look anyway.
                    self._bump(work=True)
                self._listening.set()
                delay = 0.05
                async for notice in conn.notifies():
                    mine = self._conn is not None and notice.pid == self._conn.info.backend_pid
                    if not mine:
                        self._bump(work=notice.payload == WORK)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server went away: try again, as the writer does
                log.info("history listener: %s", _one_line(exc, self._secret))
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _bump(self, *, work: bool) -> None:
        self._version += 1
        if work:
            self._work += 1
        self._changed.set()

    async def data_version(self) -> int:
        return self._version

    async def work_version(self) -> int:
        return self._work

    async def wait_for_change(self, since: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._version == since:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            if self._version != since:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=left)
        return True
