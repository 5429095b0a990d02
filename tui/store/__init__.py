"""The history database: the only package in wan-tui that writes SQL.

`jobs` holds each job's current state; `events` is the append-only log of how it got
there; `jobs_fts` indexes prompts so a search stays instant at 100 000 jobs.

    history   the Store: every query, written once for both backends
    team      a team's queries (leases, engines, the shared rate budget), mixed into Store
    tx        a transaction's statements as the queries see them (Tx, Row)
    opening   open_store: the backend a path or a postgresql:// DSN names
    sqlite    SqliteStore: one person's history in a file (WAL, BEGIN IMMEDIATE)
    postgres  PostgresStore: a team's history on a server (psycopg 3, LISTEN/NOTIFY)
    schema    every migration, in order (append only), for SQLite and its PostgreSQL twin
    rows      Job <-> row, and JobQuery -> WHERE / ORDER BY (with each backend's Dialect)
    records   the values the store returns besides jobs, and StoreError
    files     the SQLite file: permissions, one-line problems, the pre-migration backup
    doctor    `wan-tui doctor`'s read-only look at the history (a file or a server)
    copy      `wan-tui db copy`: an SQLite history into PostgreSQL
"""

from tui.store.doctor import Finding, check_history, check_server
from tui.store.files import (
    backup_database,
    backup_path,
    io_problem,
    open_problem,
    read_only_reason,
)
from tui.store.history import Store, is_server_dsn
from tui.store.opening import open_store
from tui.store.records import (
    BatchStats,
    Claim,
    ConnectionLost,
    EngineRequest,
    Event,
    LeaseLost,
    Spend,
    StoreError,
    TeamEngine,
)
from tui.store.rows import fts_query
from tui.store.schema import MIGRATIONS
from tui.store.sqlite import SqliteStore

__all__ = [
    "MIGRATIONS",
    "BatchStats",
    "Claim",
    "ConnectionLost",
    "EngineRequest",
    "Event",
    "Finding",
    "LeaseLost",
    "SqliteStore",
    "Spend",
    "Store",
    "StoreError",
    "TeamEngine",
    "open_store",
    "backup_database",
    "backup_path",
    "check_history",
    "check_server",
    "fts_query",
    "is_server_dsn",
    "io_problem",
    "open_problem",
    "read_only_reason",
]
