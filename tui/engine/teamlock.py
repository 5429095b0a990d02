"""One engine per team database, until jobs are followed under leases.

On a shared PostgreSQL history every machine has its own home and so its own flock
(tui/engine/lock.py): alone, that would let two machines' engines follow the same jobs, and
an engine starting on one machine would mark the other's submit on the wire `unknown` (its
start-up recovery), losing the remote id when the answer comes. So the engine of a team
database also holds a PostgreSQL advisory lock, on a connection of its own: the server drops
it when that connection or its process dies (SIGKILL included), and the next engine, on any
machine, takes it. The machine's flock stays, so one machine never starts two.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from tui.config import machine_name
from tui.engine.lock import EngineLock
from tui.errors import Failure

_NAME = re.compile(r"wan-tui engine (?P<host>\S+) pid (?P<pid>\d+)")


class TeamEngineLock(EngineLock):
    def __init__(self, path: Path, dsn: str) -> None:
        super().__init__(path)
        self._dsn = dsn
        self._conn: Any = None  # holds the advisory lock while we are the engine
        self._probe: Any = None  # asks who holds it (kept: holder() is asked often)

    def _connect(self, role: str) -> Any:
        import psycopg

        from tui.store.postgres import dsn_password, mask_dsn

        try:
            return psycopg.connect(self._dsn, autocommit=True, connect_timeout=10,
                                   application_name=role)
        except psycopg.Error as exc:
            text = " ".join(str(exc).split())
            secret = dsn_password(self._dsn)
            raise Failure(f"cannot reach the team database {mask_dsn(self._dsn)} for the "
                          f"engine lock ({text.replace(secret, '***') if secret else text})"
                          "; `wan-tui doctor` checks it") from None

    def try_acquire(self) -> bool:
        if self._conn is not None and self.held:
            return True
        if not super().try_acquire():
            return False
        try:
            conn = self._connect(f"wan-tui engine {machine_name()} pid {os.getpid()}")
            from tui.store.postgres import TEAM_ENGINE_KEY  # psycopg only on a team's history

            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (TEAM_ENGINE_KEY,)).fetchone()
        except BaseException:
            super().release()
            raise
        if not (row and row[0]):
            conn.close()
            super().release()
            return False
        self._conn = conn
        return True

    def holder(self) -> int | None:
        """The engine's pid: this machine's holder, or the one the team database names
        (on whichever machine it runs; `engine_host()` says which)."""
        local = super().holder()
        if local is not None:
            return local
        found = self._remote()
        return int(found["pid"]) if found else None

    def engine_host(self) -> str | None:
        """The machine whose engine holds the team lock, if any."""
        if self._conn is not None:
            return machine_name()
        found = self._remote()
        return found["host"] if found else None

    def _remote(self) -> dict[str, str] | None:
        import psycopg

        from tui.store.postgres import ENGINE_HOLDER_SQL, TEAM_ENGINE_KEY

        for _ in range(2):  # a probe connection the server dropped is made again once
            try:
                if self._probe is None or self._probe.closed:
                    self._probe = self._connect("wan-tui probe")
                row = self._probe.execute(ENGINE_HOLDER_SQL, (TEAM_ENGINE_KEY,)).fetchone()
            except psycopg.OperationalError:
                self._probe = None
                continue
            match = _NAME.fullmatch(row[0]) if row else None
            return match.groupdict() if match else None
        return None

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()  # the server lets go of the advisory lock with it
        probe, self._probe = self._probe, None
        if probe is not None:
            with contextlib.suppress(Exception):
                probe.close()
        super().release()


def engine_lock_for(path: Path, database: str | None) -> EngineLock:
    """The engine lock of a history: this machine's flock, plus the team database's lock
    when the history is shared."""
    return TeamEngineLock(path, database) if database else EngineLock(path)
