"""A team's engines, one per machine, each following its own jobs under leases (issue 18).

Every "machine" here is a home folder of its own with its own WAN_TUI_ENGINE_NAME, and
every engine a real `wan-tui engine run` process; the history is a real PostgreSQL
database (tests/pg.py), the provider the simulator. Leases are 3 s instead of 30 so that
an adoption takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import T2V, as_downloaded, sim_env

from tui.engine.lock import EngineLock

LEASE_S = 3.0


def machine(sim: Any, tmp_path: Path, name: str, dsn: str, **extra: str) -> dict[str, str]:
    return sim_env(sim, tmp_path / name, WAN_TUI_DATABASE=dsn, WAN_TUI_ENGINE_NAME=name,
                   WAN_TUI_ENGINE_LEASE_S=str(LEASE_S), **extra)


def wan(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", *args], env=env, text=True,
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)


def batch_file(tmp_path: Path, name: str, count: int) -> Path:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"model": T2V, "prompt": f"{name} take {i}",
                                        "duration": "5s"}) + "\n" for i in range(count)))
    return path


def rows(dsn: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def wait_until(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def jobs_of(dsn: str) -> list[dict[str, Any]]:
    cols = ("id", "prompt", "state", "origin", "owner", "lease_epoch", "file", "file_host",
            "bytes", "sha256", "remote_id")
    return [dict(zip(cols, r, strict=True))
            for r in rows(dsn, f"SELECT {', '.join(cols)} FROM jobs ORDER BY id")]


@pytest.fixture
def engines() -> Iterator[Callable[[dict[str, str]], subprocess.Popen]]:
    """`wan-tui engine run` processes, stopped (SIGCONT first, then SIGKILL) at the end."""
    started: list[subprocess.Popen] = []

    def start(env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "tui", "engine", "run"],
                                env={**env, "WAN_TUI_ENGINE_IDLE_EXIT_S": "inf"},
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=30)


def clock_ahead(seconds: int) -> dict[str, str]:
    """The environment that makes a process's wall clock `seconds` fast: libfaketime
    (Debian's faketime), preloaded into the engine itself, so its pid is the engine's and
    its monotonic clock stays true."""
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    assert found, "libfaketime is missing: .ci/system-packages installs faketime"
    return {"LD_PRELOAD": str(found[0]), "FAKETIME": f"+{seconds}s",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def registered(dsn: str, name: str) -> bool:
    try:
        return bool(rows(dsn, "SELECT 1 FROM engines WHERE name = %s AND stopped_at IS NULL",
                         (name,)))
    except psycopg.errors.UndefinedTable:
        return False  # not migrated yet


def engine_pid(home: Path) -> int:
    return wait_until(f"an engine in {home}", EngineLock(home / "engine.lock").holder)


def videos_in(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.mp4")) if folder.exists() else []


def test_two_machines_each_get_their_own_videos_and_see_every_job(make_sim, pg_dsn, tmp_path,
                                                                  engines) -> None:
    """Each machine's engine follows the jobs recorded there, so each video lands on the
    machine that asked for it; both list all jobs; one queue call per job."""
    sim = make_sim(mean_s=1.0)
    envs = {name: machine(sim, tmp_path, name, pg_dsn) for name in ("alpha", "beta")}
    for name, env in envs.items():
        done = wan(env, "batch", str(batch_file(tmp_path, name, 3)), "--yes")
        assert done.returncode == 0, done.stderr
    for env in envs.values():
        watched = wan(env, "watch", "--progress-every", "0.5")
        assert watched.returncode == 0, watched.stdout + watched.stderr
    jobs = jobs_of(pg_dsn)
    assert len(jobs) == 6 and {j["state"] for j in jobs} == {"done"}
    for job in jobs:
        name = job["prompt"].split()[0]
        assert job["origin"] == job["owner"] == job["file_host"] == name
        assert Path(job["file"]).is_relative_to(tmp_path / name)
        assert as_downloaded(job["file"]) == sim.state.job(job["remote_id"]).sha256
    assert len(sim.state.queue_calls) == 6
    for env in envs.values():
        listed = json.loads(wan(env, "list", "--json").stdout)
        assert sorted(r["prompt"] for r in listed) == sorted(j["prompt"] for j in jobs)


def test_sigkill_of_an_engine_mid_batch_another_adopts_its_jobs(make_sim, pg_dsn, tmp_path,
                                                                 engines) -> None:
    """alpha's engine dies with its batch running: beta's adopts every job within a lease
    and a look, downloads each to its own folder exactly once; one paid submit per job."""
    sim = make_sim(mean_s=8.0)
    alpha, beta = (machine(sim, tmp_path, n, pg_dsn) for n in ("alpha", "beta"))
    engines(beta)
    wait_until("beta's engine", lambda: registered(pg_dsn, "beta"))
    recorded = wan(alpha, "batch", str(batch_file(tmp_path, "alpha", 4)), "--yes")
    assert recorded.returncode == 0, recorded.stderr
    wait_until("alpha's jobs submitted", lambda: len(rows(
        pg_dsn, "SELECT 1 FROM jobs WHERE remote_id IS NOT NULL AND owner = 'alpha'")) == 4)
    assert {j["state"] for j in jobs_of(pg_dsn)} <= {"queued", "processing"}
    pid = engine_pid(tmp_path / "alpha")
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    wait_until("every job done", lambda: {j["state"] for j in jobs_of(pg_dsn)} == {"done"})

    jobs = jobs_of(pg_dsn)
    adoptions = rows(pg_dsn, "SELECT job_id, at, engine FROM events WHERE detail LIKE"
                             " 'adopted by engine beta%%' ORDER BY job_id")
    assert [a[0] for a in adoptions] == [j["id"] for j in jobs]
    assert {a[2] for a in adoptions} == {"beta"}
    # within the lease (counted from alpha's last renewal, before the kill) and a look
    assert max(a[1] for a in adoptions) - killed_at <= LEASE_S + 2.0 + 1.0
    for job in jobs:
        assert job["owner"] == job["file_host"] == "beta" and job["origin"] == "alpha"
        assert job["lease_epoch"] == 2  # alpha's claim, then beta's
        assert Path(job["file"]).is_relative_to(tmp_path / "beta")
        assert hashlib.sha256(Path(job["file"]).read_bytes()).hexdigest() == job["sha256"]
        assert as_downloaded(job["file"]) == sim.state.job(job["remote_id"]).sha256
    assert len(videos_in(tmp_path / "beta")) == 4 and not videos_in(tmp_path / "alpha")
    assert len(sim.state.queue_calls) == 4


def test_a_machine_whose_clock_runs_fast_takes_no_lease_early(make_sim, pg_dsn, tmp_path,
                                                              engines) -> None:
    """beta's clock is 20 s ahead (libfaketime on its engine process), far past a 3 s
    lease: read on its own clock every lease of alpha's would look run out. Engines read
    time on the database server's, so alpha keeps its jobs to the end and beta takes none."""
    sim = make_sim(mean_s=4.0)
    alpha, beta = (machine(sim, tmp_path, n, pg_dsn) for n in ("alpha", "beta"))
    engines({**beta, **clock_ahead(20)})
    wait_until("beta's engine", lambda: registered(pg_dsn, "beta"))
    skew = rows(pg_dsn, "SELECT heartbeat_at - extract(epoch FROM clock_timestamp())"
                        " FROM engines WHERE name = 'beta'")[0][0]
    assert abs(skew) < 2.0  # its heartbeat is stamped on the server's clock, not +20 s
    recorded = wan(alpha, "batch", str(batch_file(tmp_path, "alpha", 4)), "--yes")
    assert recorded.returncode == 0, recorded.stderr
    engines(alpha)
    wait_until("every job done", lambda: [j["state"] for j in jobs_of(pg_dsn)] == ["done"] * 4)
    assert rows(pg_dsn, "SELECT count(*) FROM events WHERE detail LIKE 'adopted%%'") == [(0,)]
    for job in jobs_of(pg_dsn):
        assert job["origin"] == job["owner"] == job["file_host"] == "alpha"
        assert job["lease_epoch"] == 1
        assert as_downloaded(job["file"]) == sim.state.job(job["remote_id"]).sha256
    assert len(videos_in(tmp_path / "alpha")) == 4 and not videos_in(tmp_path / "beta")
    assert len(sim.state.queue_calls) == 4


def test_an_engine_stopped_past_its_lease_writes_nothing_for_adopted_jobs(
        make_sim, pg_dsn, tmp_path, engines) -> None:
    """SIGSTOP alpha's engine past its lease: beta adopts; SIGCONT alpha: it finds its
    epochs fenced and writes nothing more for those jobs (no event of its after the
    adoption, no file of theirs in its folder); beta finishes them."""
    sim = make_sim(mean_s=10.0)
    alpha, beta = (machine(sim, tmp_path, n, pg_dsn) for n in ("alpha", "beta"))
    alpha_engine = engines(alpha)
    engines(beta)
    wait_until("both engines", lambda: registered(pg_dsn, "alpha") and registered(pg_dsn, "beta"))
    recorded = wan(alpha, "batch", str(batch_file(tmp_path, "alpha", 3)), "--yes")
    assert recorded.returncode == 0, recorded.stderr
    wait_until("alpha's jobs submitted", lambda: len(rows(
        pg_dsn, "SELECT 1 FROM jobs WHERE remote_id IS NOT NULL AND owner = 'alpha'")) == 3)
    os.kill(alpha_engine.pid, signal.SIGSTOP)
    try:
        wait_until("beta adopting every job", lambda: {j["owner"] for j in jobs_of(pg_dsn)}
                   == {"beta"}, timeout=60)
        adopted_at = max(r[0] for r in rows(
            pg_dsn, "SELECT at FROM events WHERE detail LIKE 'adopted by engine beta%%'"))
    finally:
        os.kill(alpha_engine.pid, signal.SIGCONT)
    wait_until("every job done", lambda: {j["state"] for j in jobs_of(pg_dsn)} == {"done"})
    # alpha is alive and has looked again (its heartbeat after the resume)
    wait_until("alpha's heartbeat", lambda: rows(
        pg_dsn, "SELECT 1 FROM engines WHERE name = 'alpha' AND heartbeat_at > %s",
        (adopted_at,)))
    assert alpha_engine.poll() is None
    late = rows(pg_dsn, "SELECT job_id, detail FROM events WHERE engine = 'alpha' AND at > %s",
                (adopted_at,))
    assert late == []
    for job in jobs_of(pg_dsn):
        assert job["owner"] == job["file_host"] == "beta"
        assert as_downloaded(job["file"]) == sim.state.job(job["remote_id"]).sha256
    assert not videos_in(tmp_path / "alpha")
    assert len(sim.state.queue_calls) == 3


def test_cut_connections_and_a_server_restart_mid_batch_lose_nothing(
        make_sim, pg, pg_dsn, tmp_path, engines) -> None:
    """Two engines mid-batch: every wan-tui connection terminated, then the server
    restarted. The engines connect again by themselves; every job ends done on its own
    machine, each paid for once."""
    sim = make_sim(mean_s=6.0)
    envs = {name: machine(sim, tmp_path, name, pg_dsn) for name in ("alpha", "beta")}
    for env in envs.values():
        engines(env)
    wait_until("both engines", lambda: registered(pg_dsn, "alpha") and registered(pg_dsn, "beta"))
    for name, env in envs.items():
        assert wan(env, "batch", str(batch_file(tmp_path, name, 4)), "--yes").returncode == 0
    wait_until("some jobs submitted", lambda: len(rows(
        pg_dsn, "SELECT 1 FROM jobs WHERE remote_id IS NOT NULL")) >= 2)
    cut = rows(pg_dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE application_name LIKE 'wan-tui%%' AND pid != pg_backend_pid()")
    assert cut and all(r[0] for r in cut)
    time.sleep(0.5)
    pg.restart()
    wait_until("every job done", lambda: {j["state"] for j in jobs_of(pg_dsn)} == {"done"},
               timeout=120)
    jobs = jobs_of(pg_dsn)
    assert len(jobs) == 8
    for job in jobs:
        assert job["origin"] == job["owner"] == job["file_host"]
        assert Path(job["file"]).is_relative_to(tmp_path / job["origin"])
        assert as_downloaded(job["file"]) == sim.state.job(job["remote_id"]).sha256
    assert len(sim.state.queue_calls) == 8
    assert len({rid for rid, _, _ in sim.state.queue_calls}) == 8


def test_an_engine_name_in_use_elsewhere_is_refused_in_one_line(make_sim, pg_dsn, tmp_path,
                                                                engines) -> None:
    """Two homes claiming one engine name would each take the other's jobs for their own:
    the second is refused, saying how to fix it."""
    sim = make_sim()
    engines(machine(sim, tmp_path, "alpha", pg_dsn))
    wait_until("alpha's engine", lambda: registered(pg_dsn, "alpha"))
    twin = machine(sim, tmp_path, "alpha", pg_dsn, WAN_TUI_HOME=str(tmp_path / "elsewhere"))
    ran = wan(twin, "engine", "run")
    assert ran.returncode != 0
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "WAN_TUI_ENGINE_NAME" in lines[0], ran.stderr
    assert "Traceback" not in ran.stderr


async def test_a_write_fenced_by_an_older_epoch_is_refused(pg_dsn, monkeypatch) -> None:
    """The fence itself, without the heartbeat that usually notices first: alpha's lease
    runs out, beta adopts (epoch 2), and every write alpha then tries about the job is
    refused with nothing written; alpha's renewal no longer returns it; beta's writes go."""
    from tui.jobs import JobRequest, JobState
    from tui.store import LeaseLost, open_store

    now = [1_000_000.0]
    monkeypatch.setenv("WAN_TUI_ENGINE_NAME", "alpha")
    alpha = await open_store(pg_dsn, clock=lambda: now[0])
    monkeypatch.setenv("WAN_TUI_ENGINE_NAME", "beta")
    beta = await open_store(pg_dsn, clock=lambda: now[0])
    try:
        alpha.fence_name, beta.fence_name = "alpha", "beta"
        (job,) = await alpha.add_jobs([JobRequest(model=T2V, prompt="a fenced fox")])
        assert job.origin == "alpha"
        (mine,) = await alpha.claim_jobs("alpha", 30.0, ids=[job.id])
        alpha.fenced[job.id] = mine.epoch
        assert (mine.epoch, mine.previous) == (1, None)
        assert await beta.claim_jobs("beta", 30.0) == []  # alpha's lease still runs
        now[0] += 31.0
        (adopted,) = await beta.claim_jobs("beta", 30.0)
        beta.fenced[job.id] = adopted.epoch
        assert (adopted.epoch, adopted.previous) == (2, "alpha")
        with pytest.raises(LeaseLost, match="engine beta"):
            await alpha.transition(job.id, JobState.SUBMITTING, "sending",
                                   expect={JobState.PENDING})
        with pytest.raises(LeaseLost):
            await alpha.update(job.id, event="late progress", progress=0.5)
        assert await alpha.renew_leases("alpha", 30.0) == {}
        row = await beta.get(job.id)
        assert row is not None and row.state == JobState.PENDING and row.progress is None
        assert [e.detail for e in await beta.events(job.id)][-1].startswith(
            "adopted by engine beta")
        moved = await beta.transition(job.id, JobState.SUBMITTING, "sending",
                                      expect={JobState.PENDING})
        assert moved is not None and moved.owner == "beta"
        assert await beta.renew_leases("beta", 30.0) == {job.id: 2}
    finally:
        await alpha.close()
        await beta.close()


def test_a_refused_engine_is_not_started_again_at_every_look(make_sim, pg_dsn, tmp_path,
                                                             engines, monkeypatch) -> None:
    """A window whose engine is refused (its name in use elsewhere) does not start a new
    one every quarter second: the failed one counts as starting for a while."""
    from tui.engine.background import EngineStarter

    sim = make_sim()
    engines(machine(sim, tmp_path, "alpha", pg_dsn))
    wait_until("alpha's engine", lambda: registered(pg_dsn, "alpha"))
    twin = machine(sim, tmp_path, "alpha", pg_dsn, WAN_TUI_HOME=str(tmp_path / "elsewhere"))
    for key, value in twin.items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "elsewhere"
    starter = EngineStarter(EngineLock(home / "engine.lock"), home / "engine.log")
    first = starter.ensure()
    assert starter._proc is not None
    assert starter._proc.wait(timeout=60) == 1  # refused: the name is alpha's
    assert "WAN_TUI_ENGINE_NAME" in (home / "engine.log").read_text()
    assert starter.ensure() == first and starter.started == [first]
