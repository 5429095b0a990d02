"""SIGKILL of the engine process at several points of a batch: no paid job lost, none
paid twice. `batch` starts the engine; `watch` (a client) starts a new one each time."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from conftest import T2V, as_downloaded, kill_engine_when, sim_env, stored_jobs, whole_copy_of

from tui.jobs import JobState
from tui.sim.state import Faults

JOBS = 20


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def events_of(db: Path, job_id: int) -> list:
    import asyncio

    from tui.store import open_store

    async def read() -> list:
        async with await open_store(db) as store:
            return await store.events(job_id)
    return asyncio.run(read())


def start(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tui.cli", *args], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_kills_during_batch_and_watch_lose_nothing_and_pay_once(make_sim, tmp_path):
    # failure_block off: its 30 s real-time window is an artifact at the tests' 1/50 pace.
    sim = make_sim(Faults(rate_500=0.15, rate_503=0.15, cut_rate=0.25, failure_block_threshold=0),
                   seed=21, mean_s=1.5)
    home = tmp_path / "home"
    out = home / "videos"
    early_deletes: list[str] = []

    def whole_copy_on_disk(job) -> None:
        if not whole_copy_of(out, job.sha256):
            early_deletes.append(job.remote_id)

    sim.state.on_delete = whole_copy_on_disk
    env = sim_env(sim, home, WAN_TUI_DELETE_REMOTE="true")
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(
        json.dumps({"model": T2V, "prompt": f"crash test {i}", "duration": "5s"}) + "\n"
        for i in range(JOBS)))

    def calls() -> int:
        return len(sim.state.queue_calls)

    in_flight: list[int] = []  # submits cut off by each kill (the next start says unknown)

    def killed(ended_by_kill: bool) -> bool:
        if ended_by_kill:
            jobs = stored_jobs(home / "history.db")
            in_flight.append(sum(j.state == JobState.SUBMITTING for j in jobs))
            assert in_flight[-1] <= 1  # one paid call on the wire per provider, at most
        return ended_by_kill

    # 1. the engine the batch started, killed part-way through its submits
    recorded = start(env, "batch", str(batch), "--yes")
    assert killed(kill_engine_when(home, lambda: calls() >= 6))
    assert recorded.wait(timeout=60) == 0
    # A watch (a client) starts a new engine, and another after each kill:
    final = start(env, "watch", "--progress-every", "5")
    # 2. killed while it submits what the first left pending
    killed(kill_engine_when(home, lambda: calls() >= 12))
    # 3. killed once some files are on disk
    killed(kill_engine_when(home, lambda: len(list(out.glob("*.mp4"))) >= 5))
    # 4. killed in the middle of downloads
    downloads = sim.state.stats()["downloads"]
    killed(kill_engine_when(home, lambda: sim.state.stats()["downloads"] >= downloads + 2))
    # 5. left to finish
    stdout, stderr = final.communicate(timeout=180)
    assert "Traceback" not in stderr

    jobs = stored_jobs(home / "history.db")
    assert len(jobs) == JOBS
    unknown = [j for j in jobs if j.state == JobState.UNKNOWN]
    # A submit a kill cut off may also be settled by the next engine from the provider's
    # ledger (settle.py), the evidence in its timeline: cancelled at $0 when the ledger
    # proves it was never charged, at its price when the charge shows without its id (with
    # the id, it is followed and done like the rest).
    settled = [j for j in jobs if j.state == JobState.CANCELLED]
    for job in settled:
        said = [e.detail for e in events_of(home / "history.db", job.id)]
        assert job.cost_usd in (0.0, job.quote_usd) and any(
            d.startswith("settled from the Venice ledger") for d in said), (job, said)
    # Only a submit in flight at one of the kills may be unknown or settled; everything else
    # finished. (How many were in flight depends on how fast the machine is; the count does
    # not.)
    assert len(unknown) + len(settled) <= sum(in_flight), (
        in_flight, [(j.id, j.state) for j in jobs], stdout[-3000:], stderr[-3000:])
    assert all(j.state == JobState.DONE for j in jobs if j not in unknown + settled), (
        [(j.id, j.state, j.error) for j in jobs if j.state != JobState.DONE],
        final.returncode, stdout[-3000:], stderr[-3000:])
    # The last watch exits 1, saying so in one line, exactly while unknown jobs (maybe
    # charged) wait for the user to settle them (`wan-tui resolve`).
    if unknown:
        assert final.returncode == 1 and f"{len(unknown)} job" in stderr, stderr[-3000:]
        assert "maybe charged" in stderr and "wan-tui resolve" in stderr
    else:
        assert final.returncode == (1 if settled else 0), (stdout[-3000:], stderr[-3000:])
        assert "maybe charged" not in stderr

    charged = {rid for rid, was_charged, _ in sim.state.queue_calls if was_charged}
    tracked = {j.remote_id for j in jobs if j.remote_id}
    assert len(sim.state.queue_calls) <= JOBS  # never a second submit of the same job
    # every charge is tracked, or shown unknown, or settled as charged
    assert len(charged - tracked) <= len(unknown) + sum(bool(j.cost_usd) for j in settled)
    for job in jobs:
        if job.state == JobState.DONE:
            assert sha(Path(job.file)) == job.sha256
            assert as_downloaded(job.file) == sim.state.job(job.remote_id).sha256
            assert job.remote_deleted
    assert not early_deletes
    assert len(sim.state.complete_calls) == sum(j.state == JobState.DONE for j in jobs)
    assert not list(out.glob("*.part"))
