"""A real PostgreSQL server for the tests: Debian's binaries (.ci/system-packages installs
them), a cluster in a temporary folder, loopback only, torn down at the end.

The server refuses to run as root, and CI runs as root: there it runs as the system user
`wantui-pg` (created if missing); anyone else runs it as themselves. Each pytest-xdist
worker starts its own (session fixture `pg` in conftest.py) and each test takes a fresh
database from it, so tests share nothing. The superuser has a password (scram over TCP):
the tests that check a password never leaks need one to leak.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import psycopg

PG_USER = "wantui-pg"
SUPERUSER = "wantui"
PASSWORD = "pg-test-secret-8c1f"  # noqa: S105 (a throwaway server's)


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `bash .ci/system-packages`")
    return Path(found[-1]).parent


def _run_as() -> dict:
    """subprocess arguments that drop root to PG_USER (nothing for anyone else)."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError:
        # Two xdist workers may both get here: the loser's useradd fails, the user exists.
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", PG_USER], capture_output=True, check=False)
        entry = pwd.getpwnam(PG_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    root: Path
    port: int
    _names: Iterator[int] = field(default_factory=count)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(self, dbname: str = "postgres", *, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{dbname}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn(), autocommit=True)

    def new_database(self) -> str:
        """A fresh, empty database's DSN (password included)."""
        name = f"t{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def pg_ctl(self, *args: str) -> None:
        subprocess.run([str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                        *args], check=True, capture_output=True, **_run_as())

    def start(self) -> None:
        self.pg_ctl("-l", str(self.root / "server.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "stop")

    def restart(self) -> None:
        self.stop("fast")
        self.start()

    def _watchdog(self, as_user: dict) -> None:
        """If this test process dies without tearing down (killed by a timeout, SIGKILL),
        a small shell it leaves behind stops the server and removes its folder."""
        # /proc, not `kill -0`: the watchdog runs as PG_USER, who may not signal root.
        script = (f"while [ -d /proc/{os.getpid()} ]; do sleep 1; done; "
                  f"'{pg_bin() / 'pg_ctl'}' -D '{self.data}' -m immediate stop >/dev/null 2>&1;"
                  f" rm -rf '{self.root}'")
        subprocess.Popen(["sh", "-c", script], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, **as_user)

    def terminate(self, application_name: str, dbname: str) -> int:
        """pg_terminate_backend every connection of that application to that database."""
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND datname = %s",
                (application_name, dbname)).fetchall()
        return len(rows)

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[PgServer]:
        root = Path(tempfile.mkdtemp(prefix="wan-tui-pg-"))
        as_user = _run_as()
        if as_user:
            os.chown(root, as_user["user"], as_user["group"])
        server = cls(root, _free_port())
        try:
            pwfile = root / "pw"
            pwfile.write_text(PASSWORD + "\n")
            if as_user:
                os.chown(pwfile, as_user["user"], as_user["group"])
            subprocess.run(
                [str(pg_bin() / "initdb"), "-D", str(server.data), "-U", SUPERUSER,
                 "--pwfile", str(pwfile), "--auth-local=scram-sha-256",
                 "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync", "--locale=C"],
                check=True, capture_output=True, **as_user)
            with (server.data / "postgresql.conf").open("a") as conf:
                # Loopback only; the socket in our own folder. fsync off: a test server
                # need not survive power loss, and the shared machine is small.
                conf.write(f"listen_addresses = '127.0.0.1'\nport = {server.port}\n"
                           f"unix_socket_directories = '{root}'\nfsync = off\n"
                           "synchronous_commit = off\nfull_page_writes = off\n"
                           "max_connections = 200\nshared_buffers = 32MB\n")
            server.start()
            server._watchdog(as_user)
            yield server
        finally:
            with contextlib.suppress(Exception):
                server.stop("immediate")
            shutil.rmtree(root, ignore_errors=True)


def wait_until(predicate, timeout: float = 10.0, every: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()
