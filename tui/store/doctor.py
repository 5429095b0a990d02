"""`wan-tui doctor`'s look at the history, read-only: the SQLite file, or a team's server
and its engines."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from tui.jobs import JobState
from tui.store import schema
from tui.store.files import backup_path, read_only_reason
from tui.store.records import STALE_ENGINE_S, TeamEngine
from tui.store.team import TEAM_ENGINES_SQL

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
    latest = len(schema.MIGRATIONS)
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


def check_server(dsn: str, lease_s: float = STALE_ENGINE_S) -> list[Finding]:
    """`wan-tui doctor` for a team's PostgreSQL history: the connection (TLS or not), the
    schema version, the jobs, and the team's engines (silent past `lease_s`: flagged).
    Read-only."""
    import psycopg

    from tui.store.postgres import SERVER_CLOCK_SQL, clock_offset, dsn_password, mask_dsn

    where = mask_dsn(dsn)
    secret = dsn_password(dsn)
    try:
        conn = psycopg.connect(dsn, connect_timeout=5, application_name="wan-tui doctor",
                               autocommit=True)
    except psycopg.Error as exc:
        text = " ".join(str(exc).split())
        return [Finding(False, f"history database {where} cannot be reached: "
                        f"{text.replace(secret, '***') if secret else text}",
                        "check WAN_TUI_DATABASE (or `database` in the config), that the "
                        "server runs and accepts this machine, and the role's password "
                        "(PGPASSWORD or ~/.pgpass)")]
    out: list[Finding] = []
    try:
        info = conn.info
        tls = "TLS" if info.pgconn.ssl_in_use else "no TLS"
        out.append(Finding(True, f"history database {where} (PostgreSQL "
                           f"{info.server_version // 10000}, {tls})"))
        latest = len(schema.PG_MIGRATIONS)
        row = conn.execute("SELECT to_regclass('wan_tui_schema') IS NOT NULL").fetchone()
        version = 0
        if row and row[0]:
            got = conn.execute("SELECT version FROM wan_tui_schema").fetchone()
            version = int(got[0]) if got else 0
        if version > latest:
            out.append(Finding(False, f"schema version {version} is newer than this wan-tui "
                               f"knows ({latest})", "upgrade wan-tui on this machine"))
            return out
        if version < latest:
            out.append(Finding(True, f"schema version {version}: upgraded to {latest} on "
                               "next use"))
        else:
            out.append(Finding(True, f"schema version {version} (current)"))
        if not version:
            return out
        counts: dict[str, int] = dict(
            conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        unknown = counts.get(JobState.UNKNOWN.value, 0)
        out.append(Finding(unknown == 0, f"{sum(counts.values())} jobs, {unknown} unknown "
                           "(maybe charged)",
                           "" if not unknown else "check each on the provider, then "
                           "`wan-tui resolve ID --charged` or `--not-charged`"))
        before = time.time()
        clock = conn.execute(SERVER_CLOCK_SQL).fetchone()
        server_now = float(clock[0]) if clock else time.time()
        out.append(Finding(True, "clock: " + clock_line(clock_offset(server_now, before,
                                                                      time.time()))))
        has_engines = conn.execute("SELECT to_regclass('engines') IS NOT NULL").fetchone()
        if has_engines and has_engines[0]:
            out += engine_findings([TeamEngine(*row) for row in
                                    conn.execute(TEAM_ENGINES_SQL).fetchall()], server_now,
                                   lease_s)
    except psycopg.Error as exc:
        out.append(Finding(False, f"history database {where} cannot be read: "
                           f"{' '.join(str(exc).split())}", "check the role's privileges"))
    finally:
        conn.close()
    return out


def clock_line(offset: float) -> str:
    """How far this machine's clock is from the server's; engines read time on the
    server's, so leases and rate windows agree whatever the machines' clocks say."""
    if abs(offset) < 0.5:
        said = "this machine's agrees with the server's"
    else:
        said = (f"this machine's is {abs(offset):.1f} s "
                f"{'behind' if offset > 0 else 'ahead of'} the server's")
    return f"{said} (wan-tui reads leases and rate windows on the server's)"


def engine_findings(engines: list[TeamEngine], now: float,
                    lease_s: float = STALE_ENGINE_S) -> list[Finding]:
    """One line per engine of the team: who, where, how long since its heartbeat (the age
    of its leases), the active jobs it holds; an engine silent for longer than a lease is
    flagged, and a problem while it still holds jobs nobody has adopted."""
    if not engines:
        return [Finding(True, "engines: none has run on this history yet")]
    running = sum(e.stopped_at is None and not e.stale(now, lease_s) for e in engines)
    out = [Finding(True, f"engines: {len(engines)} on this history, {running} running")]
    for e in engines:
        who = f"engine {e.name} on {e.host} pid {e.pid}"
        jobs = f"{e.active_jobs} active job{'s' if e.active_jobs != 1 else ''}"
        silent = int(e.silent_for(now))
        if e.stopped_at is not None:
            out.append(Finding(True, f"{who}: stopped {int(max(0.0, now - e.stopped_at))} s "
                               f"ago, {jobs}"))
        elif e.stale(now, lease_s):
            out.append(Finding(
                e.active_jobs == 0, f"{who}: not heard from for {silent} s: its jobs are "
                f"adopted by the others ({jobs} still held)",
                "" if e.active_jobs == 0 else f"no engine has adopted them yet: run "
                "`wan-tui watch --detach` on another machine, or bring "
                f"{e.host} back (`wan-tui engine status` there)"))
        else:
            out.append(Finding(True, f"{who}: running, lease age {silent} s, {jobs}"))
    return out
