"""A team's history in PostgreSQL, on a real server (tests/pg.py): the CLI on it, `db copy`,
`doctor`, passwords kept out of sight, changes seen at once (LISTEN/NOTIFY), and a store
that rides out pg_terminate_backend and a server restart."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from conftest import T2V, sim_env
from pg import PASSWORD, PgServer

from tui.config import ConfigError, load_config
from tui.engine.lock import EngineLock
from tui.jobs import JobRequest, JobState
from tui.store import MIGRATIONS, StoreError, open_store
from tui.store.postgres import PostgresStore, mask_dsn
from tui.store.schema import PG_MIGRATIONS

S = JobState


def req(prompt: str = "a fox") -> JobRequest:
    return JobRequest(model=T2V, prompt=prompt)


def dbname(dsn: str) -> str:
    return dsn.rsplit("/", 1)[1]


def without_password(dsn: str) -> str:
    return dsn.replace(f":{PASSWORD}@", "@")


# ------------------------------------------------------------------ the shape of things


def test_every_migration_has_its_postgresql_twin() -> None:
    assert len(PG_MIGRATIONS) == len(MIGRATIONS)


@pytest.mark.parametrize("dsn, shown", [
    ("postgresql://alice:s3cret@db.lan:5433/wantui?sslmode=require",
     "postgresql://alice:***@db.lan:5433/wantui?sslmode=require"),
    ("postgres://alice@db.lan/wantui?password=s3cret&sslmode=verify-full",
     "postgres://alice@db.lan/wantui?password=***&sslmode=verify-full"),
    ("postgresql://alice@db.lan/wantui", "postgresql://alice@db.lan/wantui"),
    ("host=db.lan password='s3 cret' dbname=wantui", "host=db.lan password=*** dbname=wantui"),
])
def test_a_dsn_is_shown_without_its_password(dsn: str, shown: str) -> None:
    assert mask_dsn(dsn) == shown and "s3" not in mask_dsn(dsn)


def test_the_database_comes_from_the_environment_or_the_config(tmp_path, monkeypatch) -> None:
    assert load_config().database is None  # the default: this machine's SQLite file
    monkeypatch.setenv("WAN_TUI_DATABASE", "postgresql://alice@db.lan/wantui")
    config = load_config()
    assert config.history == "postgresql://alice@db.lan/wantui"
    assert "alice" not in repr(config)
    monkeypatch.delenv("WAN_TUI_DATABASE")
    home = Path(os.environ["WAN_TUI_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('database = "postgres://bob@db.lan/team"\n')
    assert load_config().history == "postgres://bob@db.lan/team"
    monkeypatch.setenv("WAN_TUI_DATABASE", "mysql://bob:hunter2@db.lan/team")
    with pytest.raises(ConfigError, match="must be a postgresql://") as err:
        load_config()
    assert "hunter2" not in str(err.value)


# ------------------------------------------------------------------ the server's own rules


async def test_the_event_log_is_append_only_on_the_server(pg_dsn: str) -> None:
    store = await open_store(pg_dsn)
    try:
        (job,) = await store.add_jobs([req()])
    finally:
        await store.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for sql in ("UPDATE events SET detail = 'rewritten'", "DELETE FROM events"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(sql)
        assert conn.execute("SELECT count(*) FROM events WHERE job_id = %s",
                            (job.id,)).fetchone() == (1,)


async def test_a_newer_schema_on_the_server_is_refused_in_one_line(pg_dsn: str) -> None:
    await (await open_store(pg_dsn)).close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE wan_tui_schema SET version = version + 1")
    with pytest.raises(StoreError, match="knows only up to") as err:
        await open_store(pg_dsn)
    assert PASSWORD not in str(err.value) and "\n" not in str(err.value)


async def test_a_wrong_password_is_one_line_without_it(pg: PgServer, pg_dsn: str) -> None:
    wrong = pg_dsn.replace(PASSWORD, "not-the-password-77")
    with pytest.raises(StoreError, match="cannot connect to the history database") as err:
        await open_store(wrong)
    assert "not-the-password-77" not in str(err.value) and "***" in str(err.value)
    assert "\n" not in str(err.value)


async def test_a_batch_gets_consecutive_ids_while_others_write(pg_dsn: str) -> None:
    """A batch is named by its first job's id; batches recorded at once from several
    connections (machines) never interleave their ids."""
    stores = [await open_store(pg_dsn) for _ in range(3)]
    try:
        batches = await asyncio.gather(*(
            s.add_jobs([req(f"m{n} p{i}") for i in range(40)])
            for n, s in enumerate(stores) for _ in range(3)))
        for jobs in batches:
            ids = [j.id for j in jobs]
            assert ids == list(range(ids[0], ids[0] + 40))
            assert {j.batch_id for j in jobs} == {ids[0]}
        assert await stores[0].count_jobs() == 360
    finally:
        for s in stores:
            await s.close()


# ------------------------------------------------------------------ changes reach every window


async def test_another_connection_sees_a_change_within_a_second(pg_dsn: str) -> None:
    writer = await open_store(pg_dsn)
    window = await open_store(pg_dsn)
    try:
        first = await window.data_version()
        (job,) = await writer.add_jobs([req()])
        assert await window.wait_for_change(first, 1.0)
        for state in (S.SUBMITTING, S.QUEUED, S.PROCESSING):
            version = await window.data_version()
            await writer.transition(job.id, state, "moved")
            assert await window.wait_for_change(version, 1.0)
            seen = await window.changed_since(0)
            assert [j.state for j in seen] == [state]
        # Its own commits are not news to a store (as SQLite's data_version).
        own = await window.data_version()
        await window.update(job.id, progress=0.5)
        assert not await window.wait_for_change(own, 0.3)
    finally:
        await writer.close()
        await window.close()


# ------------------------------------------------------------------ a server that goes away


async def test_a_terminated_connection_is_made_again_and_nothing_is_lost(
        pg: PgServer, pg_dsn: str) -> None:
    store = await open_store(pg_dsn)
    window = await open_store(pg_dsn)
    try:
        assert isinstance(store, PostgresStore)
        jobs = await store.add_jobs([req(f"p{i}") for i in range(5)])
        assert pg.terminate("wan-tui", dbname(pg_dsn)) >= 2  # both stores' statements
        assert pg.terminate("wan-tui listen", dbname(pg_dsn)) >= 2
        assert await store.get(jobs[0].id) == jobs[0]  # a read: connects again
        moved = await store.transition(jobs[1].id, S.SUBMITTING, "claimed",
                                       expect=[S.PENDING])
        assert moved is not None and store.reconnects >= 1
        pg.terminate("wan-tui", dbname(pg_dsn))
        # A write whose connection is gone before it began is run on a new one, once.
        again = await window.transition(jobs[1].id, S.SUBMITTING, "claimed twice?",
                                        expect=[S.PENDING])
        assert again is None
        assert [e.state for e in await window.events(jobs[1].id)] == [S.PENDING, S.SUBMITTING]
        # The listener came back too: a change is seen again.
        await asyncio.sleep(0.3)
        version = await window.data_version()
        await store.transition(jobs[2].id, S.SUBMITTING, "claimed", expect=[S.PENDING])
        assert await window.wait_for_change(version, 2.0)
    finally:
        await store.close()
        await window.close()


async def test_a_server_restart_is_ridden_out(pg: PgServer, pg_dsn: str) -> None:
    store = await open_store(pg_dsn)
    window = await open_store(pg_dsn)
    try:
        jobs = await store.add_jobs([req(f"p{i}") for i in range(3)])
        await asyncio.to_thread(pg.restart)
        claimed = await store.transition(jobs[0].id, S.SUBMITTING, "after restart",
                                         expect=[S.PENDING])
        assert claimed is not None
        assert (await window.get(jobs[0].id)).state is S.SUBMITTING
        assert await store.count_jobs() == 3
        await asyncio.sleep(0.5)  # the listeners reconnect in the background
        version = await window.data_version()
        await store.update(jobs[1].id, progress=0.2)
        assert await window.wait_for_change(version, 3.0)
    finally:
        await store.close()
        await window.close()


# ------------------------------------------------------------------ the CLI on a team database


def test_two_machines_submit_to_one_history(team_cli, tmp_path) -> None:
    """Two homes (machines) on one database: each batch's videos land where it was run,
    and each machine lists every job."""
    dsn = team_cli.dsn
    for machine in ("a", "b"):
        batch = tmp_path / f"{machine}.jsonl"
        batch.write_text("".join(json.dumps({"model": T2V, "prompt": f"{machine} fox {i}",
                                             "duration": "5s"}) + "\n" for i in range(2)))
        code, out, err = team_cli("batch", str(batch), "--yes", "--follow",
                                  "--progress-every", "0.5", home=machine,
                                  WAN_TUI_DATABASE=dsn, WAN_TUI_ENGINE_NAME=f"host-{machine}")
        assert code == 0 and "2 done, 0 not done" in out, err
    assert len(team_cli.sim.state.queue_calls) == 4  # one paid submit per job
    for machine in ("a", "b"):
        code, out, _ = team_cli("list", "--json", home=machine, WAN_TUI_DATABASE=dsn)
        rows = json.loads(out)
        assert sorted(r["prompt"] for r in rows) == ["a fox 0", "a fox 1", "b fox 0",
                                                     "b fox 1"]
        for row in rows:
            # On the machine that submitted it (its engine followed it), as file_host says.
            host = row["file_host"]
            assert host == f"host-{row['prompt'][0]}"
            assert Path(row["file"]).is_relative_to(tmp_path / host.removeprefix("host-"))
            assert Path(row["file"]).stat().st_size == row["bytes"]
    assert not (tmp_path / "a" / "history.db").exists()  # nothing went to SQLite


def test_db_copy_moves_a_history_and_runs_again_harmlessly(team_cli, tmp_path, pg) -> None:
    batch = tmp_path / "b.jsonl"
    batch.write_text("".join(json.dumps({"model": T2V, "prompt": f"fox {i}", "duration": "5s"})
                             + "\n" for i in range(3)))
    code, _, err = team_cli("batch", str(batch), "--yes", "--follow", "--progress-every", "0.5")
    assert code == 0, err
    code, before, _ = team_cli("list", "--json")
    # The password never on the command line: refused there, taken from the environment.
    code, out, err = team_cli("db", "copy", team_cli.dsn)
    assert code == 2 and PASSWORD not in out + err and "~/.pgpass" in err
    code, out, err = team_cli("db", "copy", without_password(team_cli.dsn),
                              PGPASSWORD=PASSWORD)
    assert code == 0 and "copied 3 jobs (1 batches)" in out, err
    assert PASSWORD not in out + err
    code, out, err = team_cli("db", "copy", without_password(team_cli.dsn),
                              PGPASSWORD=PASSWORD)
    assert code == 1 and "already holds 3 jobs" in err and "--force" in err
    code, out, err = team_cli("db", "copy", "--force", WAN_TUI_DATABASE=team_cli.dsn,
                              WAN_TUI_ENGINE_NAME="studio-1")
    assert code == 0 and "3 already there" in out, err
    code, after, _ = team_cli("list", "--json", WAN_TUI_DATABASE=team_cli.dsn)
    copied = json.loads(after)
    # The same jobs, and now the team knows whose disk their files are on.
    assert [r["file_host"] for r in copied] == ["studio-1"] * 3
    assert [{**r, "file_host": None} for r in copied] == json.loads(before)
    code, out, _ = team_cli("show", str(json.loads(before)[0]["id"]),
                            WAN_TUI_DATABASE=team_cli.dsn)
    assert out.count("done") >= 1
    with sqlite3.connect(tmp_path / "home" / "history.db") as conn:
        source = conn.execute("SELECT job_id, at, state, detail FROM events ORDER BY id").fetchall()
    with psycopg.connect(team_cli.dsn) as pconn:  # every event once, in order
        assert pconn.execute("SELECT job_id, at, state, detail FROM events ORDER BY id"
                             ).fetchall() == source
    code, out, err = team_cli("batch", str(batch), "--yes", "--follow", "--progress-every",
                              "0.5", WAN_TUI_DATABASE=team_cli.dsn)
    assert code == 0, err
    code, out, _ = team_cli("list", "--json", WAN_TUI_DATABASE=team_cli.dsn)
    ids = [r["id"] for r in json.loads(out)]
    assert len(set(ids)) == 6 and min(ids[:3]) > max(r["id"] for r in json.loads(before))


def test_the_detail_pane_says_which_machine_holds_a_file(monkeypatch) -> None:
    from tui.app.widgets.detail import file_text
    from tui.jobs import Job

    monkeypatch.setenv("WAN_TUI_ENGINE_NAME", "beta")
    job = Job(id=7, request=req(), state=S.DONE, created_at=1.0, updated_at=2.0,
              file="/videos/fox.mp4", bytes=2048, file_host="alpha")
    assert "scp alpha:/videos/fox.mp4 ." in file_text(job).plain
    assert "missing" not in file_text(job).plain
    here = file_text(job.with_(file_host="beta")).plain  # this machine's: checked on disk
    assert here.startswith("/videos/fox.mp4") and "missing on disk" in here


def test_a_different_history_is_not_merged_over_another(team_cli, tmp_path) -> None:
    batch = tmp_path / "b.jsonl"
    batch.write_text(json.dumps({"model": T2V, "prompt": "mine", "duration": "5s"}) + "\n")
    for machine in ("a", "b"):
        code, _, err = team_cli("batch", str(batch), "--yes", "--follow", "--progress-every",
                                "0.5", home=machine)
        assert code == 0, err
    assert team_cli("db", "copy", home="a", WAN_TUI_DATABASE=team_cli.dsn)[0] == 0
    code, out, err = team_cli("db", "copy", "--force", home="b",
                              WAN_TUI_DATABASE=team_cli.dsn)
    assert code == 1 and "is a different job" in err and "nothing was copied" in err


def test_doctor_checks_the_server_without_showing_the_password(team_cli) -> None:
    code, out, _ = team_cli("list", WAN_TUI_DATABASE=team_cli.dsn)  # creates the schema
    code, out, _ = team_cli("doctor", WAN_TUI_DATABASE=team_cli.dsn)
    assert code == 0, out
    assert "history database postgresql://wantui:***@127.0.0.1" in out
    assert f"schema version {len(PG_MIGRATIONS)} (current)" in out
    assert "0 jobs, 0 unknown" in out and PASSWORD not in out
    assert "engines: none has run on this history yet" in out
    assert "clock: this machine's agrees with the server's" in out  # one box: no offset
    wrong = team_cli.dsn.replace(PASSWORD, "wrong-pass-31")
    code, out, _ = team_cli("doctor", WAN_TUI_DATABASE=wrong)
    assert code == 1 and "cannot be reached" in out and "wrong-pass-31" not in out
    code, out, _ = team_cli("config", WAN_TUI_DATABASE=team_cli.dsn)
    assert "postgresql://wantui:***@" in out and PASSWORD not in out


def test_the_password_never_reaches_the_log(team_cli, tmp_path) -> None:
    wrong = team_cli.dsn.replace(PASSWORD, "leaky-secret-99")
    code, out, err = team_cli("list", WAN_TUI_DATABASE=wrong)
    assert code == 1 and "cannot connect" in err and "leaky-secret-99" not in out + err
    team_cli("list", "--debug", WAN_TUI_DATABASE=team_cli.dsn)
    logs = "".join(p.read_text() for p in (tmp_path / "home").rglob("*.log*"))
    assert logs and "leaky-secret-99" not in logs and PASSWORD not in logs


def test_a_process_reads_the_password_from_pgpassword_only(pg: PgServer, pg_dsn, tmp_path):
    """A real `wan-tui` process: DSN without a password, PGPASSWORD beside it; the process's
    argv (what `ps` shows) never holds it."""
    env = {**os.environ, "WAN_TUI_HOME": str(tmp_path / "home"),
           "WAN_TUI_DATABASE": without_password(pg_dsn), "PGPASSWORD": PASSWORD}
    done = subprocess.run([sys.executable, "-m", "tui", "list", "--json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout) == [], done.stderr


# ------------------------------------------------------------------ an engine per machine


def test_two_machines_run_batches_at_once_one_submit_each(team_cli, sim, tmp_path) -> None:
    """alpha runs a batch as a real process; while it runs, beta runs one too. Each machine's
    engine follows its own machine's jobs (beta's batch starts beta's engine beside
    alpha's): every job is done, each paid for once, its file on the machine that asked."""
    dsn = team_cli.dsn
    jobs = tmp_path / "alpha.jsonl"
    jobs.write_text("".join(json.dumps({"model": T2V, "prompt": f"alpha {i}",
                                        "duration": "5s"}) + "\n" for i in range(6)))
    env = sim_env(sim, tmp_path / "alpha", WAN_TUI_DATABASE=dsn, WAN_TUI_ENGINE_NAME="alpha")
    alpha = subprocess.Popen([sys.executable, "-m", "tui", "batch", str(jobs), "--yes",
                              "--follow", "--progress-every", "0.5"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with psycopg.connect(dsn) as conn:
            for _ in range(600):  # alpha has recorded its batch (the schema is there too)
                if conn.execute("SELECT to_regclass('jobs') IS NOT NULL").fetchone()[0] and \
                        conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 6:
                    break
                conn.rollback()
                time.sleep(0.05)
        mine = tmp_path / "beta.jsonl"
        mine.write_text("".join(json.dumps({"model": T2V, "prompt": f"beta {i}",
                                            "duration": "5s"}) + "\n" for i in range(2)))
        code, out, err = team_cli("batch", str(mine), "--yes", "--progress-every", "0.5",
                                  home="beta", WAN_TUI_DATABASE=dsn, WAN_TUI_ENGINE_NAME="beta")
        # beta starts an engine of its own (a process), beside alpha's, and names its pid
        engine = int(out.split("recorded 2 jobs; pid ")[1].split()[0])
        alphas = EngineLock(tmp_path / "alpha" / "engine.lock").holder()
        assert code == 0 and engine not in (os.getpid(), alpha.pid, alphas), out + err
        out_a, err_a = alpha.communicate(timeout=120)
        assert alpha.returncode == 0, err_a
    finally:
        if alpha.poll() is None:
            alpha.kill()
            alpha.wait()
    # beta's engine may still be at work: watch until it is done.
    code, out, err = team_cli("watch", "--progress-every", "0.5", home="beta",
                              WAN_TUI_DATABASE=dsn, WAN_TUI_ENGINE_NAME="beta")
    assert code == 0, out + err
    code, out, _ = team_cli("list", "--json", home="beta", WAN_TUI_DATABASE=dsn)
    rows = json.loads(out)
    assert len(rows) == 8 and all(r["state"] == "done" for r in rows)
    assert len(sim.state.queue_calls) == 8  # one paid submit per job, whatever followed it
    for row in rows:
        assert row["file_host"] == row["prompt"].split()[0]
        assert Path(row["file"]).is_relative_to(tmp_path / row["file_host"])
        assert Path(row["file"]).stat().st_size == row["bytes"]


def test_the_doctor_says_how_far_this_machine_is_from_the_servers_clock() -> None:
    from tui.store.doctor import clock_line

    assert clock_line(0.2).startswith("this machine's agrees with the server's")
    assert clock_line(42.0).startswith("this machine's is 42.0 s behind the server's")
    assert clock_line(-3.04).startswith("this machine's is 3.0 s ahead of the server's")
