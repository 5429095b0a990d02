"""The history database: the only package in wan-tui that writes SQL.

`jobs` holds each job's current state; `events` is the append-only log of how it got
there; `jobs_fts` indexes prompts so a search stays instant at 100 000 jobs.

    schema    every migration, in order (append only)
    rows      Job <-> row, and JobQuery -> WHERE / ORDER BY
    records   the values the store returns besides jobs, and StoreError
    sqlite    the Store (SQLite: WAL, one short write transaction per change)
    files     the SQLite file: permissions, one-line problems, the pre-migration backup
    doctor    `wan-tui doctor`'s read-only look at the history
"""

from tui.store.doctor import Finding, check_history
from tui.store.files import (
    backup_database,
    backup_path,
    io_problem,
    open_problem,
    read_only_reason,
)
from tui.store.records import BatchStats, EngineRequest, Event, Spend, StoreError
from tui.store.rows import fts_query
from tui.store.schema import MIGRATIONS
from tui.store.sqlite import Store

__all__ = [
    "MIGRATIONS",
    "BatchStats",
    "EngineRequest",
    "Event",
    "Finding",
    "Spend",
    "Store",
    "StoreError",
    "backup_database",
    "backup_path",
    "check_history",
    "fts_query",
    "io_problem",
    "open_problem",
    "read_only_reason",
]
