"""What a user sees from the real `wan-tui` process: bad input, no terminal, unknown jobs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import T2V, sim_env, stored_jobs

from tui.jobs import JobState
from tui.sim.state import Faults
from tui.store import open_store


def wan(env: dict[str, str], *args: str, input: str | None = None) -> tuple[int, str, str]:
    stdin = {} if input is not None else {"stdin": subprocess.DEVNULL}
    proc = subprocess.run([sys.executable, "-m", "tui.cli", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=90, **stdin)
    return proc.returncode, proc.stdout, proc.stderr


def closed_stdin(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Like `wan-tui ARGS <&-`: file descriptor 0 is closed, so sys.stdin is None."""
    proc = subprocess.run(["sh", "-c", 'exec "$0" -m tui.cli "$@" <&-', sys.executable, *args],
                          env=env, capture_output=True, text=True, timeout=90)
    return proc.returncode, proc.stdout, proc.stderr


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]



def batch_file(tmp_path: Path, *prompts: str) -> Path:
    path = tmp_path / "b.jsonl"
    path.write_text("".join(json.dumps({"model": T2V, "prompt": p, "duration": "5s"}) + "\n"
                            for p in prompts))
    return path


def test_no_terminal_means_add_yes_and_nothing_spent(sim, tmp_path):
    env = sim_env(sim, tmp_path / "home")
    batch = batch_file(tmp_path, "a fox", "a cat")
    for args in (("batch", str(batch)),
                 ("submit", "--model", T2V, "--prompt", "p", "--duration", "5s")):
        code, _, err = closed_stdin(env, *args)
        assert code == 2 and "add --yes" in one_line(err) and "nothing was sent" in err
    assert sim.state.queue_calls == []
    assert stored_jobs(tmp_path / "home" / "history.db") == []


def test_batch_refuses_devices_and_fifos_and_reads_dash_on_purpose(sim, tmp_path):
    env = sim_env(sim, tmp_path / "home")
    fifo = tmp_path / "jobs.fifo"
    os.mkfifo(fifo)
    for target, expect in (("/dev/zero", "is a device"), (str(fifo), "is a pipe")):
        code, _, err = wan(env, "batch", target, "--yes")
        assert code == 2 and expect in one_line(err)
    batch = batch_file(tmp_path, "from a pipe")
    code, out, err = wan(env, "batch", "-", "--yes", "--follow", input=batch.read_text())
    assert code == 0, err
    assert "1 done, 0 not done" in out and len(sim.state.queue_calls) == 1


def test_bad_numbers_in_a_batch_cost_nothing(sim, tmp_path):
    env = sim_env(sim, tmp_path / "home")
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps({"model": T2V, "prompt": "fine", "duration": "5s"}) + "\n"
                    + '{"model": "' + T2V + '", "prompt": "p", "duration": 5.9}\n')
    code, _, err = wan(env, "batch", str(path), "--yes")
    assert code == 2
    assert one_line(err) == "wan-tui: line 2: duration: 5.9 is not a whole number of seconds"
    code, _, err = wan(env, "submit", "--model", T2V, "--prompt", "p", "--yes",
                       "--max-cost", "nan")
    assert code == 2 and "--max-cost" in one_line(err)
    code, _, err = wan(env, "submit", "--model", T2V, "--prompt", "p", "--yes",
                       "-o", "shot_type=NaN", "-o", "k=[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]")
    assert code == 2 and "Traceback" not in err
    assert sim.state.queue_calls == []


def test_unknown_jobs_count_as_maybe_charged_until_resolved(make_sim, tmp_path):
    sim = make_sim(Faults(queue_ambiguous=1.0), seed=3)
    env = sim_env(sim, tmp_path / "home")
    db = tmp_path / "home" / "history.db"
    code, _, _ = wan(env, "batch", str(batch_file(tmp_path, "one", "two", "three")), "--yes",
                    "--follow")
    assert code == 1
    jobs = stored_jobs(db)
    assert [j.state for j in jobs] == [JobState.UNKNOWN] * 3
    spend = asyncio.run(_spend(db))
    assert spend.maybe_jobs == 3 and spend.maybe_usd == sum(j.quote_usd for j in jobs) > 0

    # watch has nothing to follow, but the unknown jobs still need the user: exit 1.
    code, out, err = wan(env, "watch")
    assert code == 1 and "no active jobs" in out
    assert "3 jobs unknown (1, 2, 3), maybe charged $" in one_line(err)
    assert "wan-tui resolve ID --charged" in err

    code, out, _ = wan(env, "resolve", "1", "--not-charged")
    assert code == 0 and "not charged" in out
    code, out, _ = wan(env, "resolve", "2", "--charged")
    assert code == 0 and "counts in the spend" in out
    code, _, err = wan(env, "resolve", "2", "--charged")
    assert code == 2 and "not unknown" in one_line(err)
    code, _, err = wan(env, "resolve", "3", "--not-charged", "--remote-id", "abc")
    assert code == 2 and "--remote-id goes with --charged" in one_line(err)
    code, _, err = wan(env, "resolve", "3")
    assert code == 2 and "one of the arguments --charged --not-charged" in one_line(err)

    one, two, three = stored_jobs(db)
    assert one.state == JobState.CANCELLED and one.cost_usd == 0.0
    assert two.state == JobState.CANCELLED and two.cost_usd == two.quote_usd
    spend = asyncio.run(_spend(db))
    assert spend.maybe_jobs == 1 and spend.charged_usd == two.quote_usd
    code, _, err = wan(env, "watch")
    assert code == 1 and "1 job unknown (3), maybe charged $" in one_line(err)


def test_resolving_with_the_provider_id_follows_and_downloads(make_sim, tmp_path):
    # The ledger lags an hour behind: the engine cannot settle the job itself (settle.py),
    # the user does, with the id the provider's site shows.
    sim = make_sim(Faults(queue_ambiguous=1.0), seed=4, ledger_lag_s=3600.0)
    env = sim_env(sim, tmp_path / "home")
    db = tmp_path / "home" / "history.db"
    wan(env, "batch", str(batch_file(tmp_path, "found it")), "--yes", "--follow")
    (job,) = stored_jobs(db)
    (remote,) = [j.remote_id for j in sim.state.jobs.values()]  # what the provider's site shows
    code, out, _ = wan(env, "resolve", str(job.id), "--charged", "--remote-id", remote)
    assert code == 0 and "follows it" in out
    code, out, err = wan(env, "watch")
    assert code == 0, err
    (job,) = stored_jobs(db)
    assert job.state == JobState.DONE and job.remote_id == remote and Path(job.file).exists()
    assert len(sim.state.queue_calls) == 1  # settled, followed, never paid again


async def _spend(db: Path):
    store = await open_store(db)
    try:
        return await store.spend_detail(0)
    finally:
        await store.close()
