"""All three providers side by side, through the CLI and the engine, faults on."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

from conftest import FAST_POLICY, as_downloaded, sim_env

from tui.cli import main
from tui.engine import Engine
from tui.jobs import JobRequest, JobState
from tui.media.recipe import read_tags
from tui.providers.acedata import AceDataProvider
from tui.sim.state import Faults
from tui.store import open_store

FAULTS = dict(rate_500=0.1, rate_503=0.1, cut_rate=0.25, failure_block_threshold=0)


def sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_mixed_batch_runs_to_byte_exact_files(make_sim, monkeypatch, tmp_path, capsys):
    sim = make_sim(Faults(**FAULTS), seed=9, mean_s=0.4)
    home = tmp_path / "home"
    for key, value in sim_env(sim, home).items():
        monkeypatch.setenv(key, value)
    lines = []
    for i in range(4):
        lines += [
            {"model": "wan-2.5-preview-text-to-video", "prompt": f"venice {i}", "duration": "5s"},
            {"provider": "apixo", "model": "wan-2-5", "prompt": f"apixo {i}", "duration": 5,
             "resolution": "720p", "seed": i, "enable_prompt_expansion": False},
            {"provider": "acedata", "model": "wan2.6-t2v", "prompt": f"acedata {i}",
             "duration": "10s", "resolution": "720P", "shot_type": "multi"},
        ]
    batch = tmp_path / "mixed.jsonl"
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines))

    assert main(["batch", str(batch), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "12 jobs" in out and "estimate" in out  # APIXO/AceData prices are estimates
    assert main(["watch"]) == 0
    capsys.readouterr()
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["provider"] for r in rows) == ["acedata"] * 4 + ["apixo"] * 4 + ["venice"] * 4
    for row in rows:
        assert row["state"] == "done", row
        # Venice quoted a real price; the other two are table estimates, per job
        assert row["cost_is_estimate"] == (row["provider"] != "venice"), row
        remote = sim.state.job(row["remote_id"])
        assert sha(row["file"]) == row["sha256"] and as_downloaded(row["file"]) == remote.sha256
        # every finished file carries its recipe, through cut downloads and 5xx alike
        tags = read_tags(Path(row["file"]))
        assert (tags["wan_tui_prompt"], tags["wan_tui_remote_id"]) == (row["prompt"],
                                                                       row["remote_id"])
    apixo = [r for r in rows if r["provider"] == "apixo"]
    assert {r["model"] for r in apixo} == {"wan-2-5-t2v"}  # the documented id, resolved
    bodies = [j.body for j in sim.state.jobs_snapshot() if j.provider == "apixo"]
    assert all(b["request_type"] == "async" and b["input"]["duration"] == 5 for b in bodies)
    ace = [j.body for j in sim.state.jobs_snapshot() if j.provider == "acedata"]
    assert all(b["async"] is True and "image_url" not in b and "negative_prompt" not in b
               for b in ace)
    assert len(sim.state.queue_calls) == 12


def test_bad_input_for_each_provider_is_refused_before_any_call(make_sim, monkeypatch,
                                                                tmp_path, capsys):
    sim = make_sim()
    for key, value in sim_env(sim, tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    cases = [
        (["--provider", "apixo", "--model", "wan-2-5", "--prompt", "x" * 801], "800"),
        (["--provider", "apixo", "--model", "wan-2-5", "--prompt", "ok", "--resolution",
          "480p"], "480p"),
        (["--provider", "apixo", "--model", "wan-2-5", "--prompt", "ok", "--duration", "15s"],
         "15s"),
        (["--provider", "acedata", "--model", "wan2.6-i2v", "--prompt", "ok"], "image"),
        (["--provider", "acedata", "--model", "wan2.6-t2v", "--prompt", "ok", "-o",
          "size=big"], "size"),
    ]
    for args, expect in cases:
        assert main(["submit", *args, "--yes"]) == 2
        err = capsys.readouterr().err
        assert expect in err and len(err.strip().splitlines()) == 1, err
    assert sim.state.stats()["requests"] == 0


async def test_thirty_acedata_jobs_cost_one_task_request_per_round(make_sim, tmp_path):
    sim = make_sim(seed=3, mean_s=1.0)
    store = await open_store(tmp_path / "h.db")
    provider = AceDataProvider(sim.url("acedata"), "sim-acedata-token")
    engine = Engine(store, {"acedata": provider}, output_dir=tmp_path / "v",
                    policy=FAST_POLICY, rescan_s=0)
    try:
        await engine.start(resume=False)
        jobs = await engine.add([JobRequest(provider="acedata", model="wan2.6-t2v",
                                            prompt=f"ace {i}") for i in range(30)])
        await asyncio.wait_for(engine.wait_idle(), 60)
        states = [(await store.get(j.id)).state for j in jobs]
    finally:
        await engine.stop()
        await provider.aclose()
        await store.close()
    assert states == [JobState.DONE] * 30
    rounds = engine.batch_pollers["acedata"].rounds
    task_requests = sim.state.counter("acedata", "/wan/tasks")
    assert task_requests == rounds  # one request per poll round, never one per job
    # Rounds serve many jobs at once: on average three or more (about nine on a busy box,
    # over twenty on an idle one, where their lives overlap more); one request per job would
    # make the two counts equal.
    job_polls = sum(engine.polls.values())
    assert job_polls >= 3 * rounds, (job_polls, rounds)
