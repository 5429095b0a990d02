"""Opening a history: the one place that chooses a backend from what the config names.

It lives beside the backends, not on the `Store` base class they subclass, so that the
base class imports neither of them (no import cycle inside the package)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tui.store.history import Store, is_server_dsn
from tui.store.sqlite import SqliteStore


async def open_store(target: Path | str, *, clock: Callable[[], float] = time.time) -> Store:
    """The history at `target`: an SQLite file's path, or a postgresql:// DSN."""
    if is_server_dsn(target):
        from tui.store.postgres import PostgresStore  # psycopg only when a team uses it

        return await PostgresStore.connect(str(target), clock=clock)
    return await SqliteStore.open_file(Path(target), clock=clock)
