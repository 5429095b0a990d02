"""`wan-tui db copy`: an SQLite history into a team's PostgreSQL database.

Jobs keep their ids (a file or log line naming job 42 still means that job), events and
batches (jobs' batch_id) come along, and the server's id sequences move past them. One
transaction: the copy is all there or not at all. Run again, it changes nothing; a target
that already has jobs is refused unless `force`, and even then a job id the target holds
for a different job (another history's) is refused rather than overwritten.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tui.store.history import Row, Tx
from tui.store.opening import open_store
from tui.store.postgres import PostgresStore
from tui.store.records import StoreError
from tui.store.rows import _COLUMNS

_EVENT_COLUMNS = ("id", "job_id", "at", "state", "detail")  # id: the order


@dataclass(frozen=True)
class Copied:
    jobs: int
    events: int
    batches: int
    already_there: int  # jobs the target held already (the same jobs: a copy run again)


def _read_source(path: Path) -> tuple[list[Row], list[Row]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        jobs = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY id").fetchall()
        events = conn.execute(
            f"SELECT {', '.join(_EVENT_COLUMNS)} FROM events ORDER BY id").fetchall()
    finally:
        conn.close()
    return jobs, events


async def copy_history(source: Path, target_dsn: str, *, force: bool = False) -> Copied:
    """Copy the SQLite history at `source` into the PostgreSQL database `target_dsn`."""
    if not source.exists():
        raise StoreError(f"there is no history at {source} to copy")
    # Opening it brings an older file to the current schema first (a copy is kept).
    await (await open_store(source)).close()
    try:
        jobs, events = await asyncio.to_thread(_read_source, source)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the history {source} ({exc}): `wan-tui doctor` "
                         "checks it") from None
    target = await PostgresStore.connect(target_dsn)
    try:
        return await target._transact(lambda tx: _copy_into(tx, target, jobs, events, force))
    finally:
        await target.close()


async def _copy_into(tx: Tx, target: PostgresStore, jobs: list[Row], events: list[Row],
                     force: bool) -> Copied:
    held = int((await tx.fetch("SELECT count(*) FROM jobs"))[0][0])
    if held and not force:
        raise StoreError(
            f"{target.location} already holds {held} jobs: add --force to copy into it "
            "anyway (a copy run again changes nothing; a job id held by another history's "
            "job is refused)")
    ids = [row[0] for row in jobs]
    same = 0
    if held and ids:
        idx_created, idx_request = _COLUMNS.index("created_at"), _COLUMNS.index("request_json")
        mine = {row[0]: (row[idx_created], row[idx_request]) for row in jobs}
        for job_id, created, request in await tx.fetch(
                "SELECT id, created_at, request_json FROM jobs WHERE id = ANY(?)", (ids,)):
            if mine[job_id] != (created, request):
                raise StoreError(
                    f"job {job_id} in {target.location} is a different job than this "
                    f"history's job {job_id}: nothing was copied (histories of several "
                    "machines cannot be merged by id; copy one into an empty database)")
            same += 1
    columns = ", ".join(_COLUMNS)
    updates = ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS if name != "id")
    await tx.run_many(
        f"INSERT INTO jobs ({columns}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        f" ON CONFLICT (id) DO UPDATE SET {updates}", jobs)
    # An event is known by what it says, not its id (the server numbers events of its own
    # jobs too); one already copied is not copied again. In order, so ids keep the order.
    await tx.run_many(
        "INSERT INTO events (job_id, at, state, detail) SELECT CAST(? AS BIGINT),"
        " CAST(? AS DOUBLE PRECISION), CAST(? AS TEXT), CAST(? AS TEXT) WHERE NOT EXISTS"
        " (SELECT 1 FROM events WHERE job_id = ? AND at = ? AND state = ? AND detail = ?)",
        [(*row[1:], *row[1:]) for row in events])
    # The copied files are on this machine's disk: said, so the team's other machines know.
    await tx.run("UPDATE jobs SET file_host = ? WHERE id = ANY(?) AND file IS NOT NULL"
                 " AND file_host IS NULL", (target.machine, ids))
    for table in ("jobs",):
        # Never backwards: ids handed out on the server before stay handed out.
        await tx.fetch(
            f"SELECT setval('{table}_id_seq', greatest((SELECT max(id) FROM {table}),"
            f" (SELECT last_value FROM {table}_id_seq)))")
    batches = len({row[_COLUMNS.index("batch_id")] for row in jobs} - {None})
    return Copied(len(jobs), len(events), batches, same)
