"""Broken disks and databases: each ends in one clear line, no job lost, none stuck, none paid
twice.

The faults are real where the machine allows: a read-only or tiny tmpfs mounted over the
folder (root with mount), else permissions (chmod, as a normal user). Where neither works
(root without mount) the folder faults fall back to a fault-injecting writer in-process, and
a read-only history to SQLite opened read-only; `FAULTS` says which one ran.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import T2V, VENICE_KEY, sim_env, stored_jobs

from tui.cli import main
from tui.engine import Notice
from tui.engine import files as files_module
from tui.jobs import JobRequest, JobState
from tui.providers.venice import VeniceProvider
from tui.store import MIGRATIONS, StoreError, backup_path, check_history, open_store


def _can_mount() -> bool:
    probe = tempfile.mkdtemp(prefix="wan-tui-mount-probe-")
    try:
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                              capture_output=True).returncode == 0
    except OSError:
        made = False
    if made:
        subprocess.run(["umount", probe], capture_output=True)
    os.rmdir(probe)
    return made


# WAN_TUI_TEST_FAULTS=inject runs the fallback on a machine that could mount.
FAULTS = os.environ.get("WAN_TUI_TEST_FAULTS") or (
    "mount" if _can_mount() else "chmod" if os.geteuid() != 0 else "inject")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextmanager
def read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`folder` (existing, maybe with files) becomes read-only until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    if FAULTS == "mount":
        _mount("--bind", str(folder), str(folder))
        try:
            _mount("-o", "remount,ro,bind", str(folder))
            yield
        finally:
            _umount(folder)
    elif FAULTS == "chmod":
        modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
        for path in modes:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
    else:
        with monkeypatch.context() as patch:
            _inject(patch, folder, errno.EROFS)
            yield


@contextmanager
def tiny_disk(folder: Path, monkeypatch: pytest.MonkeyPatch, size_kib: int = 48
              ) -> Iterator[None]:
    """`folder` is a filesystem of `size_kib` KiB (the simulator's clips are ~110 KiB)."""
    folder.mkdir(parents=True, exist_ok=True)
    if FAULTS == "mount":
        _mount("-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder))
        try:
            yield
        finally:
            _umount(folder)
    else:
        with monkeypatch.context() as patch:
            _inject(patch, folder, errno.ENOSPC, room=size_kib * 1024)
            yield


def _inject(patch: pytest.MonkeyPatch, folder: Path, code: int, room: int = 0) -> None:
    """The fault-injecting writer: files under `folder` refuse with `code` once `room`
    bytes are written; a full disk also reports `room` bytes free."""
    real_open, real_usage = pathlib.Path.open, shutil.disk_usage

    class Refusing:
        def __init__(self, fh):
            self.fh, self.written = fh, 0

        def write(self, data):
            self.written += len(data)
            if self.written > room:
                raise OSError(code, os.strerror(code))
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def open_(self, mode="r", *args, **kw):
        if "w" in mode and folder in self.parents:
            if not room:
                raise OSError(code, os.strerror(code), str(self))
            return Refusing(real_open(self, mode, *args, **kw))
        return real_open(self, mode, *args, **kw)

    def usage(path):
        got = real_usage(path)
        if Path(path) == folder:
            return got._replace(free=room)
        return got

    patch.setattr(pathlib.Path, "open", open_)
    if code == errno.ENOSPC:
        patch.setattr(files_module.shutil, "disk_usage", usage)


# ------------------------------------------------------------------ running the CLI


def wan(env: dict[str, str], *args: str, monkeypatch=None, capsys=None,
        engine: bool = False) -> tuple[int, str, str]:
    """The real `wan-tui` as a subprocess; in-process only when the fault is injected
    (an injection cannot reach another process). With `engine`, the engine process such
    a command starts runs here too while it does (a thread of this process holding the
    lock), so that it meets the injected fault."""
    if FAULTS == "inject" and monkeypatch is not None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        with engine_in_a_thread() if engine else _nothing():
            code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err
    proc = subprocess.run([sys.executable, "-m", "tui.cli", *args], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@contextmanager
def engine_in_a_thread() -> Iterator[None]:
    """`wan-tui engine run` in a thread of this process, until the block ends."""
    import threading
    from dataclasses import replace

    from tui.config import load_config
    from tui.engine.lock import EngineLock
    from tui.enginecli import engine_run

    config = replace(load_config(), engine_idle_exit_s=3600.0)
    thread = threading.Thread(target=lambda: asyncio.run(engine_run(config, spawned=True)))
    thread.start()
    lock = EngineLock(config.db_path.with_name("engine.lock"))
    for _ in range(400):
        if lock.holder() is not None:
            break
        thread.join(0.05)
    try:
        yield
    finally:
        main(["engine", "stop"])
        thread.join(60)


def the_line(err: str, needle: str) -> str:
    """stderr has no traceback, and says `needle` on exactly one line."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if needle in ln]
    assert len(lines) == 1, err
    return lines[0]



def two_jobs(tmp_path: Path) -> Path:
    batch = tmp_path / "b.jsonl"
    batch.write_text("".join(json.dumps({"model": T2V, "prompt": f"clip {i}", "duration": "5s"})
                             + "\n" for i in range(2)))
    return batch


def submit_two(env: dict[str, str], tmp_path: Path) -> None:
    """Two jobs submitted, then the engine stopped: nothing changes them until a window
    or command starts another."""
    code, out, err = wan(env, "batch", str(two_jobs(tmp_path)), "--yes", "--submit-only")
    assert code == 0, err
    code, out, err = wan(env, "engine", "stop")
    assert code == 0, err


def batch_meets_the_fault(env: dict[str, str], tmp_path: Path, **kw) -> tuple[str, str]:
    """Two jobs submitted and followed until the engine parks both at their download: the
    command exits 1, and the engine keeps them `queued` (ids kept, nothing paid again)."""
    code, out, err = wan(env, "batch", str(two_jobs(tmp_path)), "--yes", "--follow",
                         engine=True, **kw)
    assert code == 1 and "0 done, 2 not done" in out, (out, err)
    return out, err


def assert_waiting_not_lost(db: Path, sim) -> list:
    jobs = stored_jobs(db)
    assert [j.state for j in jobs] == [JobState.QUEUED, JobState.QUEUED]  # not `downloading`
    assert all(j.remote_id for j in jobs) and not any(j.file for j in jobs)
    assert len(sim.state.queue_calls) == 2
    return jobs


def assert_resumed(env, db: Path, sim, **kw) -> None:
    code, out, err = wan(env, "watch", engine=True, **kw)
    assert code == 0, err
    jobs = stored_jobs(db)
    assert [j.state for j in jobs] == [JobState.DONE, JobState.DONE]
    assert all(Path(j.file).stat().st_size == j.bytes for j in jobs)
    assert len(sim.state.queue_calls) == 2  # resumed, never paid again


# ------------------------------------------------------------------ the output folder


def test_a_read_only_output_folder_waits_with_one_line(sim, tmp_path, monkeypatch, capsys):
    videos = tmp_path / "videos"
    env = sim_env(sim, tmp_path / "home", WAN_TUI_OUTPUT_DIR=str(videos))
    db = tmp_path / "home" / "history.db"
    with read_only(videos, monkeypatch):
        out, err = batch_meets_the_fault(env, tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        line = the_line(err, "cannot save videos")
        assert str(videos) in line and ("read-only" in line or "permission denied" in line)
        assert "WAN_TUI_OUTPUT_DIR" in line
        assert_waiting_not_lost(db, sim)
        assert not list(videos.glob("*.part"))
    assert_resumed(env, db, sim, monkeypatch=monkeypatch, capsys=capsys)


def test_a_file_where_the_folder_should_be(sim, tmp_path):
    videos = tmp_path / "videos"
    videos.write_text("not a folder")
    env = sim_env(sim, tmp_path / "home", WAN_TUI_OUTPUT_DIR=str(videos))
    db = tmp_path / "home" / "history.db"
    out, err = batch_meets_the_fault(env, tmp_path)
    line = the_line(err, "cannot save videos")
    assert f"in {videos}: a file is where the folder should be; move that file away" in line
    assert_waiting_not_lost(db, sim)
    code, out, _ = wan(env, "doctor")
    assert code == 1 and "BAD" in out and "a file is where the folder should be" in out
    videos.unlink()
    assert_resumed(env, db, sim)


def test_a_full_disk_is_refused_before_the_first_byte(sim, tmp_path, monkeypatch, capsys):
    videos = tmp_path / "videos"
    env = sim_env(sim, tmp_path / "home", WAN_TUI_OUTPUT_DIR=str(videos))
    db = tmp_path / "home" / "history.db"
    with tiny_disk(videos, monkeypatch):
        out, err = batch_meets_the_fault(env, tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        line = the_line(err, "cannot save videos")
        assert "MB is free; free some space there" in line
        assert_waiting_not_lost(db, sim)
        assert list(videos.iterdir()) == []  # nothing half-written fills it further
    assert_resumed(env, db, sim, monkeypatch=monkeypatch, capsys=capsys)


async def test_a_disk_that_fills_mid_write_loses_nothing_and_others_go_on(
        sim, store, tmp_path, monkeypatch):
    # The size check cannot see what else fills the disk meanwhile: writes that hit ENOSPC
    # take the same way out. (Checking is off here so the write itself meets the full disk.)
    monkeypatch.setattr(files_module, "check_free_space", lambda folder, needed: None)
    videos = tmp_path / "videos"
    notices: list[str] = []
    from conftest import FAST_POLICY

    from tui.engine import Engine

    def engine_for() -> Engine:
        engine = Engine(store, {"venice": VeniceProvider(sim.url("venice"), VENICE_KEY)},
                        output_dir=videos, policy=FAST_POLICY, rescan_s=0)
        engine.subscribe(lambda ev: notices.append(ev.message) if isinstance(ev, Notice)
                         else None)
        return engine

    requests = [JobRequest(model=T2V, prompt=f"clip {i}") for i in range(3)]
    with tiny_disk(videos, monkeypatch):
        engine = engine_for()
        await engine.start(resume=False)
        jobs = await engine.add(requests, [0.25] * 3)
        await asyncio.wait_for(engine.wait_idle(), 60)
        await engine.stop()
        states = [(await store.get(j.id)).state for j in jobs]
        # every job was submitted and followed to the end it could reach: nothing stuck
        assert states == [JobState.QUEUED] * 3 and len(sim.state.queue_calls) == 3
        assert len([n for n in notices if "cannot save videos" in n]) == 1  # said once
        assert "the disk is full" in notices[0] and str(videos) in notices[0]
        assert not list(videos.glob("*.part"))
        events = [e.detail for e in await store.events(jobs[0].id)]
        assert any("the disk is full" in d and "wan-tui watch" in d for d in events)
    engine = engine_for()
    await engine.start()
    await asyncio.wait_for(engine.wait_idle(), 60)
    await engine.stop()
    for provider in engine.providers.values():
        await provider.aclose()
    done = [await store.get(j.id) for j in jobs]
    assert [j.state for j in done] == [JobState.DONE] * 3
    assert len(sim.state.queue_calls) == 3


# ------------------------------------------------------------------ the history database


COMMANDS = [("list",), ("show", "1"), ("watch",), ("cancel", "1"), ("resolve", "1", "--charged"),
            ("submit", "--model", T2V, "--prompt", "p", "--yes")]


def test_a_corrupt_history_says_so_in_one_line_from_every_command(sim, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = sim_env(sim, home)
    (home / "history.db").write_bytes(b"my shopping list, not a database\n" * 200)
    for args in COMMANDS:
        code, _, err = wan(env, *args)
        assert code == 1, (args, err)
        line = the_line(err, "history.db")
        assert "not a usable wan-tui database" in line and "wan-tui doctor" in line
    code, out, _ = wan(env, "doctor")
    assert code == 1 and "is not an SQLite database" in out
    assert f"mv {home / 'history.db'} {home / 'history.db'}.broken" in out
    assert sim.state.queue_calls == []


def test_damaged_pages_are_found_by_doctor_with_the_backup_to_restore(tmp_path):
    db = tmp_path / "history.db"

    async def seed():
        store = await open_store(db)
        await store.add_jobs([JobRequest(model="m", prompt=f"prompt {i} " * 20)
                              for i in range(400)])
        await store.close()
    asyncio.run(seed())
    (tmp_path / f"history.db.v{len(MIGRATIONS) - 1}.bak").write_bytes(db.read_bytes())
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    page = 4096
    for start in range(3 * page, len(data) - page, 5 * page):  # scribble over some pages
        data[start + 100:start + 600] = os.urandom(500)
    db.write_bytes(bytes(data))
    findings = check_history(db)
    bad = [f for f in findings if not f.ok]
    assert bad and ("integrity check failed" in bad[0].text or "cannot" in bad[0].text)
    assert "restore the newest backup" in bad[0].fix and ".bak" in bad[0].fix


def test_a_read_only_history_says_so_and_loses_nothing(sim, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    env = sim_env(sim, home)
    submit_two(env, tmp_path)
    before = stored_jobs(home / "history.db")
    if FAULTS == "inject":  # SQLite itself opens the file read-only
        import aiosqlite
        real = aiosqlite.connect
        monkeypatch.setattr(aiosqlite, "connect", lambda path, **kw: real(
            f"file:{path}?mode=ro", uri=True, **kw))
        monkeypatch.setattr("tui.store.files.read_only_reason",
                            lambda path: "the file is read-only")
    with read_only(home, monkeypatch) if FAULTS != "inject" else _nothing():
        for args in (("list",), ("watch",)):
            code, _, err = wan(env, *args, monkeypatch=monkeypatch, capsys=capsys)
            assert code == 1, err
            line = the_line(err, str(home))
            assert ("cannot be written" in line or "cannot create" in line) and (
                "WAN_TUI_HOME" in line)
        if FAULTS != "inject":
            code, out, _ = wan(env, "doctor")
            assert code == 1 and "cannot be written" in out and "integrity check passed" in out
    if FAULTS == "inject":
        monkeypatch.undo()
    assert [(j.id, j.state, j.remote_id) for j in stored_jobs(home / "history.db")] == [
        (j.id, j.state, j.remote_id) for j in before]


@contextmanager
def _nothing() -> Iterator[None]:
    yield


async def test_a_backup_is_kept_before_each_migration(tmp_path, monkeypatch):
    import tui.store.schema as store_schema

    db = tmp_path / "history.db"
    store = await open_store(db)
    (job,) = await store.add_jobs([JobRequest(model="m", prompt="kept")])
    await store.close()
    version = len(MIGRATIONS)
    monkeypatch.setattr(store_schema, "MIGRATIONS",
                        [*MIGRATIONS, ("ALTER TABLE jobs ADD COLUMN note TEXT",)])
    store = await open_store(db)
    await store.close()
    backup = backup_path(db, version)
    assert backup.exists() and oct(backup.stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(backup) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version
        assert conn.execute("SELECT prompt FROM jobs").fetchall() == [("kept",)]
        assert "note" not in {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    # a new history (version 0) has nothing to keep
    assert not list(tmp_path.glob("fresh.db.v*.bak"))
    await (await open_store(tmp_path / "fresh.db")).close()
    assert not list(tmp_path.glob("fresh.db.v*.bak"))


async def test_no_room_for_the_backup_means_no_migration(tmp_path, monkeypatch):
    import tui.store.schema as store_schema

    db = tmp_path / "history.db"
    await (await open_store(db)).close()
    (tmp_path / f"history.db.v{len(MIGRATIONS)}.bak.tmp").mkdir()  # the copy cannot be made
    monkeypatch.setattr(store_schema, "MIGRATIONS",
                        [*MIGRATIONS, ("ALTER TABLE jobs ADD COLUMN note TEXT",)])
    with pytest.raises(StoreError, match="cannot back up .* nothing was changed"):
        await open_store(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
