"""The engine is a process of its own; every window is a client. Real processes, real
signals, the simulator.

- a dashboard sends no provider request itself (the simulator names the sending pid): it
  starts the engine, quits without a question, and the engine finishes and leaves;
- a dashboard whose terminal closes leaves the engine following every job to disk;
- with an engine running, a second dashboard and the CLI act through it, once;
- SIGKILL of the engine mid-batch: the open dashboard starts a new one within 3 s and
  every job ends byte-exact, one queue call each (a submit the kill caught on the wire
  becomes `unknown`, never sent again);
- the engine: SIGTERM mid-submit records the id, SIGHUP does not stop it, two ctrl-c's
  end it at once; it exits by itself once idle; of two started at once, one leaves.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import T2V, as_downloaded, processes_naming, sim_env, stored_jobs

from tui.app.app import WanApp
from tui.app.facade import Facade
from tui.config import load_config
from tui.engine.lock import EngineLock
from tui.jobs import JobRequest, JobState
from tui.providers.base import Quote
from tui.sim.state import Faults
from tui.store import open_store


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def req(prompt: str) -> JobRequest:
    return JobRequest(model=T2V, prompt=prompt, duration="5s", resolution="720p")


def cli(env: dict[str, str], *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tui.cli", *args], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = cli(env, *args)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


jobs_in = stored_jobs


def record(db: Path, prompts: list[str]) -> None:
    async def add():
        store = await open_store(db)
        try:
            await store.add_jobs([req(p) for p in prompts], [0.25] * len(prompts))
        finally:
            await store.close()
    asyncio.run(add())


def dashboard_in_a_pty(sim, home: Path, prompts: list[str]) -> tuple[int, int]:
    """`wan-tui` (the dashboard) on a real terminal over a history holding `prompts` as
    pending jobs; returns (pid, the terminal's master fd)."""
    env = sim_env(sim, home, TERM="xterm-256color", COLUMNS="120", LINES="40")
    home.mkdir(parents=True)
    record(home / "history.db", prompts)
    pid, master = pty.fork()
    if pid == 0:  # the child: a dashboard on a real terminal
        os.execve(sys.executable, [sys.executable, "-m", "tui.cli"], env)
    return pid, master


def wait_for(check, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout * PATIENCE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def holder(home: Path) -> int | None:
    return EngineLock(home / "engine.lock").holder()


def all_done_byte_exact(sim, db: Path, count: int) -> None:
    jobs = jobs_in(db)
    assert len(jobs) == count
    for job in jobs:
        assert job.state == JobState.DONE, (job.id, job.state, job.error)
        assert sha(Path(job.file)) == job.sha256
        assert as_downloaded(job.file) == sim.state.job(job.remote_id).sha256
    charged = [rid for rid, was_charged, _ in sim.state.queue_calls if was_charged]
    assert sorted(charged) == sorted(j.remote_id for j in jobs)  # one queue call each


def engines_seen(home: Path, pids: set[int], until) -> None:
    """Collect every engine pid that holds the lock until `until()` is true."""
    deadline = time.monotonic() + 120 * PATIENCE
    while not until():
        pid = holder(home)
        if pid is not None:
            pids.add(pid)
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def drain(master: int, timeout: float = 30.0) -> bytes:
    """Read the terminal until the process on it closes it (so the app can exit)."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def test_the_dashboard_sends_nothing_itself_and_quits_without_a_question(make_sim, tmp_path):
    sim = make_sim(mean_s=3.0, seed=4, record_senders=True)
    home = tmp_path / "home"
    pid, master = dashboard_in_a_pty(sim, home, [f"quit {i}" for i in range(4)])
    dashboard = pid
    engines: set[int] = set()
    try:
        # The window finds pending jobs and no engine: it starts one, which submits them.
        engines_seen(home, engines, lambda: len(sim.state.queue_calls) >= 2)
        os.write(master, b"q")  # no question: the window closes at once
        text = drain(master).decode(errors="replace")
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 0
        assert "still follows" in text and "`wan-tui engine stop` ends it" in text, text
        engines_seen(home, engines, lambda: all(
            j.state == JobState.DONE for j in jobs_in(home / "history.db")))
        wait_for(lambda: holder(home) is None, 30, "the engine to leave once idle")
    finally:
        os.close(master)
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    all_done_byte_exact(sim, home / "history.db", 4)
    senders = sim.state.senders
    assert senders and {p for p, _ in senders} <= engines  # every request: an engine's
    assert len(engines) == 1 and dashboard not in engines
    log = (home / "logs" / "wan-tui.log").read_text()
    assert "the engine leaves" in log and "Traceback" not in log


def test_dashboard_whose_terminal_closes_leaves_the_engine_following(make_sim, tmp_path):
    sim = make_sim(mean_s=3.0, seed=3, record_senders=True)
    home = tmp_path / "home"
    pid, master = dashboard_in_a_pty(sim, home, [f"hang-up {i}" for i in range(6)])
    dashboard = pid
    engines: set[int] = set()
    try:
        engines_seen(home, engines, lambda: len(sim.state.queue_calls) >= 3)
        os.close(master)  # the pty hangs up: the kernel sends SIGHUP
        master = -1
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 0
        engines_seen(home, engines, lambda: all(
            j.state == JobState.DONE for j in jobs_in(home / "history.db")))
    finally:
        if master >= 0:
            os.close(master)
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    all_done_byte_exact(sim, home / "history.db", 6)
    assert dashboard not in engines and {p for p, _ in sim.state.senders} <= engines
    assert "Traceback" not in (home / "logs" / "wan-tui.log").read_text()


# Waits here are hang guards, not measurements (tui/bench/handoff.py measures): generous,
# because a 2-core machine running other work can be slow for seconds at a time.
PATIENCE = 3.0


async def _until(pilot, check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout * PATIENCE
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def _state(facade: Facade, job_id: int) -> JobState | None:
    job = await facade.get(job_id)
    return job.state if job else None


async def test_second_dashboard_and_cli_act_through_the_engine(make_sim, tmp_path, monkeypatch):
    sim = make_sim(mean_s=20.0, seed=11)  # long enough to still run when cancelled
    home = tmp_path / "home"
    env = sim_env(sim, home)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = load_config(env)
    batch = tmp_path / "b.jsonl"
    batch.write_text("".join(json.dumps({"model": T2V, "prompt": f"engine {i}",
                                         "duration": "5s"}) + "\n" for i in range(3)))
    # The batch starts an engine process: the window below is its client.
    code, out, err = await asyncio.to_thread(run_cli, env, "batch", str(batch), "--yes")
    assert code == 0 and "submits and follows them" in out, err
    wait_for(lambda: holder(home) is not None, 20, "the engine")
    engine_pid = holder(home)
    from tui.session import open_session

    try:
        async with open_session(config, lock=False) as session:
            facade = Facade(session)
            app = WanApp(facade)
            # Wide: at 160 columns who follows gives way to three providers' budgets.
            async with app.run_test(size=(240, 45)) as pilot:
                await _until(pilot, lambda: app.table.loaded.is_set(), 10, "first window")
                assert not facade.is_engine
                await _until(pilot, lambda: f"pid {engine_pid}" in str(
                    app.query_one("#status-line").render()), 10, "status names the engine")
                # submit from this window: the engine sends it (one queue call)
                (job4,) = await facade.submit([req("from the second window")], [Quote(0.25)])
                await _until(pilot, lambda: _queued(facade, job4.id), 10, "engine submitted it")
                # cancel from this window (the key, confirmed)
                app.table.focus()
                await _until(pilot, lambda: app.table.current_id is not None, 5, "cursor")
                target = app.table.current_id
                await pilot.press("c")
                await pilot.pause(0.2)
                await pilot.press("y")
                await _until(pilot, lambda: _is(facade, target, JobState.CANCELLED), 10,
                             "cancelled by the engine")
                # cancel and re-queue from the CLI while the dashboard watches
                rows = await asyncio.to_thread(jobs_in, home / "history.db")
                other = next(j.id for j in rows if j.state.active and j.id != target)
                code, out, err = await asyncio.to_thread(run_cli, env, "cancel", str(other))
                assert code == 0, err
                await _until(pilot, lambda: app.table.jobs.get(other) is not None
                             and app.table.jobs[other].state == JobState.CANCELLED, 5,
                             "the dashboard shows the CLI's cancel")
                code, out, err = await asyncio.to_thread(run_cli, env, "requeue", str(other),
                                                         "--yes")
                assert code == 0, err
                await _until(pilot, lambda: _settled(facade), 120, "every job settled")
    finally:
        if holder(home) == engine_pid:
            os.kill(engine_pid, signal.SIGTERM)
        wait_for(lambda: holder(home) is None, 30, "the engine to exit")
    jobs = await asyncio.to_thread(jobs_in, home / "history.db")
    assert len(jobs) == 5  # 3 from the batch, 1 from the window, 1 re-queue, no more
    charged = [rid for rid, was_charged, _ in sim.state.queue_calls if was_charged]
    submitted = [j.remote_id for j in jobs if j.remote_id]
    assert sorted(charged) == sorted(submitted)  # exactly one queue call per sent job
    states = sorted(j.state.value for j in jobs)
    assert states.count("cancelled") == 2 and states.count("done") == 3


async def _queued(facade: Facade, job_id: int) -> bool:
    job = await facade.get(job_id)
    return bool(job and job.remote_id)


async def _is(facade: Facade, job_id: int, state: JobState) -> bool:
    return await _state(facade, job_id) == state


async def _settled(facade: Facade) -> bool:
    counts = await facade.counts()
    return sum(n for s, n in counts.items() if s.active) == 0 and sum(counts.values()) == 5


async def test_sigkill_of_the_engine_mid_batch_the_open_dashboard_starts_another(
        make_sim, tmp_path, monkeypatch):
    sim = make_sim(mean_s=4.0, seed=5)
    home = tmp_path / "home"
    env = sim_env(sim, home)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = load_config(env)
    batch = tmp_path / "b.jsonl"
    batch.write_text("".join(json.dumps({"model": T2V, "prompt": f"takeover {i}",
                                         "duration": "5s"}) + "\n" for i in range(5)))
    code, out, err = await asyncio.to_thread(run_cli, env, "batch", str(batch), "--yes")
    assert code == 0 and "submits and follows them" in out, err
    wait_for(lambda: holder(home) is not None, 20, "the engine the batch started")
    engine_pid = holder(home)
    from tui.session import open_session

    async with open_session(config, lock=False) as session:
        facade = Facade(session)
        app = WanApp(facade)
        # Wide: at 160 columns who follows gives way to three providers' budgets.
        async with app.run_test(size=(240, 45)) as pilot:
            await _until(pilot, lambda: app.table.loaded.is_set(), 10, "first window")
            await _until(pilot, lambda: len(sim.state.queue_calls) >= 2, 20, "submits")
            assert not facade.is_engine
            os.kill(engine_pid, signal.SIGKILL)
            killed = time.monotonic()
            # Read which submits the kill caught on the wire (before a new engine can
            # start): those may have been charged and must become `unknown`, never be sent
            # again. Most runs catch none.
            wait_for(lambda: holder(home) is None, 5, "the killed engine's lock freed")
            in_flight = submitting_ids(home / "history.db")
            await _until(pilot, lambda: holder(home) not in (None, engine_pid), 3 / PATIENCE,
                         "a new engine within 3 s")
            taken = time.monotonic() - killed
            new_pid = holder(home)
            assert not facade.is_engine and new_pid != os.getpid()
            await _until(pilot, lambda: f"pid {new_pid}" in str(
                app.query_one("#status-line").render()), 10, "the window names the new engine")
            await _until(pilot, lambda: _all_settled(facade, 5), 90, "every job settled")
    assert taken < 3.0
    jobs = await asyncio.to_thread(jobs_in, home / "history.db")
    assert {j.id for j in jobs if j.state == JobState.UNKNOWN} == in_flight
    if not in_flight:
        await asyncio.to_thread(all_done_byte_exact, sim, home / "history.db", 5)
        return
    done = [j for j in jobs if j.state == JobState.DONE]
    assert len(done) == 5 - len(in_flight)
    for job in done:
        assert sha(Path(job.file)) == job.sha256
        assert as_downloaded(job.file) == sim.state.job(job.remote_id).sha256
    charged = [rid for rid, was_charged, _ in sim.state.queue_calls if was_charged]
    assert {j.remote_id for j in done} <= set(charged)
    assert len(charged) <= 5  # an unknown job is never sent again: nothing charged twice


def submitting_ids(db: Path) -> set[int]:
    """Jobs whose submit is on the wire, read without the event loop (a plain connection)."""
    import sqlite3

    with sqlite3.connect(db) as con:
        return {row[0] for row in con.execute("SELECT id FROM jobs WHERE state = ?",
                                              (JobState.SUBMITTING.value,))}


async def _all_settled(facade: Facade, count: int) -> bool:
    counts = await facade.counts()
    return sum(n for state, n in counts.items() if not state.active) == count


def engine_over(sim, home: Path, prompts: list[str], **extra: str) -> subprocess.Popen:
    """`wan-tui engine run` in the foreground over a history holding `prompts` (pending)."""
    env = sim_env(sim, home, **extra)
    home.mkdir(parents=True)
    record(home / "history.db", prompts)
    return cli(env, "engine", "run")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_engine_signal_mid_submit_records_the_id(make_sim, tmp_path, sig):
    # Every answer takes 0.6 s: a signal right after a queue call reached the simulator
    # lands while the engine still waits for the id.
    sim = make_sim(Faults(slow_s=0.6), mean_s=1.0, seed=2)
    home = tmp_path / "home"
    proc = engine_over(sim, home, [f"signal {i}" for i in range(4)])
    wait_for(lambda: len(sim.state.queue_calls) >= 1, 60, "a queue call on the wire")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=90)
    assert "Traceback" not in err and "Traceback" not in out
    assert proc.returncode == 0, err
    jobs = jobs_in(home / "history.db")
    recorded = {j.remote_id for j in jobs if j.remote_id}
    charged = {rid for rid, was_charged, _ in sim.state.queue_calls if was_charged}
    assert charged and charged <= recorded  # every charged job has its id recorded
    assert not [j for j in jobs if j.state == JobState.UNKNOWN]
    if sig == signal.SIGTERM:
        assert "engine ends (signal)" in out
    else:  # its terminal went away: it kept following, to the end, then left idle
        assert all(j.state == JobState.DONE for j in jobs)


def test_two_ctrl_c_stop_the_engine_at_once_leaving_one_job_unknown(make_sim, tmp_path):
    sim = make_sim(Faults(slow_s=8.0), mean_s=1.0, seed=2)
    home = tmp_path / "home"
    proc = engine_over(sim, home, ["interrupted twice"])
    wait_for(lambda: len(sim.state.queue_calls) >= 1, 60, "a queue call on the wire")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)  # a hang guard: the answer would take 8 s
    assert proc.returncode == 130 and "Traceback" not in err
    (job,) = jobs_in(home / "history.db")
    assert job.state == JobState.UNKNOWN
    assert "now `unknown`" in err and len([ln for ln in err.splitlines() if "unknown" in ln]) == 1


def test_engine_leaves_when_idle_and_of_two_started_at_once_one_leaves(make_sim, tmp_path):
    sim = make_sim(mean_s=0.5, seed=6)
    home = tmp_path / "home"
    first = engine_over(sim, home, ["one job"], WAN_TUI_ENGINE_IDLE_EXIT_S="1")
    second = cli(sim_env(sim, home, WAN_TUI_ENGINE_IDLE_EXIT_S="1"), "engine", "run")
    outs = [p.communicate(timeout=60) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    texts = sorted(out for out, _ in outs)
    assert "already follows the jobs" in texts[0] and "engine ends (idle)" in texts[1], texts
    all_done_byte_exact(sim, home / "history.db", 1)
    assert holder(home) is None


def test_an_idle_engine_stays_for_the_ledger_to_settle_a_job_just_found_unknown(make_sim,
                                                                                  tmp_path):
    """A submit charged but answered 500 is `unknown`; nothing else is active, yet the
    engine does not leave at its idle exit (1 s) before Venice's ledger had its passes
    (every 6 s here): the charge is found, the job followed to disk, then it leaves."""
    sim = make_sim(mean_s=0.5, seed=5)
    home = tmp_path / "home"
    proc = engine_over(sim, home, ["[sim:ambiguous] a kestrel"],
                       WAN_TUI_ENGINE_IDLE_EXIT_S="1", WAN_TUI_TIME_SCALE="0.1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "engine ends (idle)" in out, (out, err)
    (job,) = jobs_in(home / "history.db")
    assert job.state == JobState.DONE, (job.state, job.error)
    assert sha(Path(job.file)) == job.sha256
    assert len(sim.state.queue_calls) == 1  # charged once, never sent again


def test_a_job_resolved_as_charged_is_followed_by_the_engine_that_let_it_go(make_sim,
                                                                             tmp_path):
    """An APIXO submit charged but answered 500 is `unknown` (APIXO has no ledger). The
    user finds it on APIXO and runs `wan-tui resolve ID --charged --remote-id ...` while the
    engine that ran it still runs: that engine follows it to disk, without a restart."""
    sim = make_sim(Faults(queue_ambiguous=1.0), mean_s=0.5, seed=7)
    home = tmp_path / "home"
    env = sim_env(sim, home, WAN_TUI_ENGINE_IDLE_EXIT_S="inf")
    home.mkdir(parents=True)
    proc = cli(env, "engine", "run")
    try:
        wait_for(lambda: holder(home) is not None, 60, "the engine")
        code, out, err = run_cli(env, "submit", "--provider", "apixo", "--model",
                                 "wan-2-5-t2v", "--yes", "-p", "an otter")
        assert code == 1 and "job 1 is unknown" in err, out + err
        wait_for(lambda: [j.state for j in jobs_in(home / "history.db")]
                 == [JobState.UNKNOWN], 60, "the lost answer")
        [(remote_id, charged, status)] = sim.state.queue_calls
        assert charged and status == 500
        code, out, err = run_cli(env, "resolve", "1", "--charged", "--remote-id", remote_id)
        assert code == 0, out + err
        wait_for(lambda: [j.state for j in jobs_in(home / "history.db")] == [JobState.DONE],
                 60, "the engine to follow it to disk")
        assert holder(home) == proc.pid  # the same engine, not a new one
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    (job,) = jobs_in(home / "history.db")
    assert job.remote_id == remote_id and sha(Path(job.file)) == job.sha256
    assert len(sim.state.queue_calls) == 1


def test_engine_status_stop_and_batch_handed_to_a_running_engine(make_sim, tmp_path):
    # Still running when the engine is stopped, on a busy box too (27 s at the least)
    sim = make_sim(mean_s=30.0, spread=0.1, seed=9)
    home = tmp_path / "home"
    env = sim_env(sim, home)
    home.mkdir(parents=True)
    code, out, _ = run_cli(env, "engine", "status")
    assert code == 0 and "none running" in out and "0 jobs" in out
    record(home / "history.db", ["first"])
    assert run_cli(env, "watch", "--detach")[0] == 0
    wait_for(lambda: holder(home) is not None, 20, "the engine")
    pid = holder(home)
    code, out, _ = run_cli(env, "watch", "--detach")
    assert code == 0 and f"pid {pid} already follows" in out  # never a second engine
    # With an engine running, batch records its jobs and returns; the engine submits them.
    batch = tmp_path / "b.jsonl"
    batch.write_text("".join(json.dumps({"model": T2V, "prompt": f"handed {i}",
                                         "duration": "5s"}) + "\n" for i in range(2)))
    code, out, err = run_cli(env, "batch", str(batch), "--yes")
    assert code == 0 and f"pid {pid} submits and follows them" in out, err
    wait_for(lambda: all(j.remote_id for j in jobs_in(home / "history.db")), 20,
             "the engine submitted them")
    # The status is published every 2 s: the one out now may predate the first balance read.
    wait_for(lambda: "balance    venice $" in run_cli(env, "engine", "status")[1], 10,
             "a published status with the balance")
    code, out, _ = run_cli(env, "engine", "status")
    assert f"pid {pid} on " in out and " since " in out and "venice retrieve" in out
    assert "balance    venice $" in out and "(USD, can spend)" in out  # Venice's own word
    assert "log " in out and "active     3 jobs" in out
    def venice_retrieve(status: dict) -> dict:
        return next(b for b in status["budgets"]
                    if (b["provider"], b["rate_class"]) == ("venice", "retrieve"))

    # The first status poll waits for the server's estimate, and the status is published
    # every 2 s: wait until one shows a poll, rather than race the engine's first one.
    wait_for(lambda: venice_retrieve(json.loads(run_cli(env, "engine", "status", "--json")[1]))
             ["used"] >= 1, 20, "a status poll counted in the published budget")
    code, out, _ = run_cli(env, "engine", "status", "--json")
    status = json.loads(out)
    assert status["pid"] == pid and status["active_jobs"] == 3 and status["halts"] == {}
    assert status["host"] and status["started"] <= time.time()
    assert status["log_file"].endswith("wan-tui.log")
    assert status["balances"]["venice"]["can_consume"] is True
    venice = venice_retrieve(status)
    assert venice["used"] >= 1 and venice["limit"] > 0
    code, out, err = run_cli(env, "engine", "stop")
    assert code == 0 and f"pid {pid} stopped" in out, err
    assert holder(home) is None
    jobs = jobs_in(home / "history.db")
    assert len(jobs) == 3 and len(sim.state.queue_calls) == 3
    # Stopped, not lost: a quiet watch starts an engine and prints only the end.
    code, out, _ = run_cli(env, "watch", "--quiet")
    assert code == 0, out
    assert out.splitlines()[-1].endswith(" done, 0 not done"), out
    assert "◐" not in out  # no state changes printed under --quiet
    all_done_byte_exact(sim, home / "history.db", 3)


def test_a_killed_demo_window_leaves_nothing_running(tmp_path):
    """SIGKILL of `wan-tui demo` (no cleanup of its own can run): its watcher stops the
    demo's engine and simulator and deletes the demo's folder."""
    env = dict(os.environ, TMPDIR=str(tmp_path), TERM="xterm-256color", COLUMNS="120",
               LINES="40")
    pid, master = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-m", "tui.cli", "demo", "--mean", "30"],
                  env)
    try:
        def folder() -> Path | None:
            made = list(tmp_path.glob("wan-tui-demo-*"))
            return made[0] if made else None

        def running() -> bool:  # its simulator, its engine (following jobs) and the watcher
            demo = folder()
            if demo is None:
                return False
            drain(master, timeout=0.2)  # the terminal's output, so the window never blocks
            named = processes_naming(demo)
            return len(named) >= 3 and holder(demo / "home") is not None
        wait_for(running, 60, "the demo's simulator, engine and watcher")
        demo = folder()
        assert demo is not None
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pid = 0
        wait_for(lambda: not demo.exists() and not processes_naming(demo), 30,
                 "the demo's processes to stop and its folder to go")
    finally:
        os.close(master)
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
