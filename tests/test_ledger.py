"""The provider's own word on money (issue #20): the balance a key spends from, and unknown
jobs settled from Venice's ledger where it proves the answer -- over the simulator, whose
ledger is shaped as Venice's published document says.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from conftest import FAST_POLICY, T2V, VENICE_KEY, kill_engine_when, sim_env, stored_jobs

from tui.engine.events import BalanceChanged
from tui.jobs import JobRequest, JobState
from tui.providers.http import HttpPolicy
from tui.providers.venice import VeniceProvider
from tui.store import Store, open_store

SHORT = HttpPolicy(deadline_s=5.0)


def req(prompt: str, model: str = T2V) -> JobRequest:
    return JobRequest(model=model, prompt=prompt, duration="5s")


async def engine_for(make_engine, sim, **kw):
    provider = VeniceProvider(sim.url("venice"), VENICE_KEY, policy=SHORT)
    return await make_engine(sim, providers={"venice": provider}, **kw)


async def timeline(store: Store, job_id: int) -> list[str]:
    return [e.detail for e in await store.events(job_id)]


# ---------------------------------------------------------------- balance


async def test_a_key_that_cannot_spend_sends_nothing_and_says_why(make_sim, make_engine):
    sim = make_sim(seed=2)
    sim.state.can_consume = False
    engine = await engine_for(make_engine, sim)
    seen: list[BalanceChanged] = []
    engine.subscribe(lambda e: seen.append(e) if isinstance(e, BalanceChanged) else None)
    await engine.start()
    jobs = await engine.add([req(f"a gull {i}") for i in range(3)])
    await engine.wait_idle()
    assert [(await engine.store.get(j.id)).state for j in jobs] == [JobState.PENDING] * 3
    assert sim.state.queue_calls == []  # nothing sent
    reason = engine.halted["venice"]
    assert "cannot spend" in reason and "\n" not in reason and "$1,000.00" in reason
    assert seen and seen[-1].balance.can_consume is False


async def test_the_balance_is_read_at_start_and_after_spending(make_sim, make_engine):
    sim = make_sim(seed=2)
    engine = await engine_for(make_engine, sim)
    seen: list[float | None] = []
    engine.subscribe(lambda e: seen.append(e.balance.usd)
                     if isinstance(e, BalanceChanged) else None)
    await engine.start()
    await engine.add([req("a heron")])
    await engine.wait_idle()
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        await engine.clock.sleep(0.05)
    assert seen[0] == 1000.0 and seen[-1] == sim.state.balance_usd < 1000.0
    assert engine.balances.balances["venice"].label() == f"${sim.state.balance_usd:,.2f}"


def test_the_status_line_shows_the_balance_the_provider_reports():
    from tui.app.facade import BudgetStatus
    from tui.app.widgets.status import StatusData, render_status

    budgets = [BudgetStatus("venice", "queue", 3, 40, 0, 12.0)]
    reported = render_status(StatusData(budgets=budgets, balances={"venice": "90.50 DIEM"}))
    assert "venice bal 90.50 DIEM q3/40" in reported.plain and "$12.00" not in reported.plain
    assert reported.plain.count("venice") == 1  # the provider is named once
    assert "venice bal $5.00" in render_status(StatusData(balances={"venice": "$5.00"})).plain
    assert "$12.00" in render_status(StatusData(budgets=budgets)).plain  # the header's word


# ---------------------------------------------------------------- settling from the ledger


async def test_a_charged_job_whose_answer_was_lost_is_settled_and_downloaded(make_sim,
                                                                             make_engine):
    sim = make_sim(seed=5)
    engine = await engine_for(make_engine, sim, policy=FAST_POLICY)
    await engine.start()
    [lost] = await engine.add([req("[sim:ambiguous] a kestrel")])
    await engine.wait_idle()
    assert (await engine.store.get(lost.id)).state == JobState.UNKNOWN
    await engine.add([req("a later clip")])  # the ledger records past the lost job's window
    deadline = time.monotonic() + 20
    while (await engine.store.get(lost.id)).state != JobState.DONE:
        assert time.monotonic() < deadline, await timeline(engine.store, lost.id)
        await engine.clock.sleep(0.1)
    job = await engine.store.get(lost.id)
    [charged] = [rid for rid, was, status in sim.state.queue_calls if status == 500]
    assert job.remote_id == charged and Path(job.file).exists()
    settled = [d for d in await timeline(engine.store, lost.id) if "ledger" in d]
    assert settled and f"request {charged}" in settled[-1] and "charged" in settled[-1]
    assert len(sim.state.queue_calls) == 2  # never sent again


async def test_two_lost_charges_of_one_model_stay_unknown_with_what_the_ledger_showed(
        make_sim, make_engine):
    sim = make_sim(seed=6)
    engine = await engine_for(make_engine, sim, policy=FAST_POLICY)
    await engine.start()
    lost = await engine.add([req("[sim:ambiguous] a stoat"), req("[sim:ambiguous] a vole")])
    await engine.wait_idle()
    await engine.add([req("a later clip")])
    await engine.wait_idle()
    deadline = time.monotonic() + 10
    while True:
        lines = [await timeline(engine.store, j.id) for j in lost]
        if all(any("cannot tell" in d for d in events) for events in lines):
            break
        assert time.monotonic() < deadline, lines
        await engine.clock.sleep(0.1)
    assert [(await engine.store.get(j.id)).state for j in lost] == [JobState.UNKNOWN] * 2


async def test_a_charge_no_job_explains_keeps_the_window_open(make_sim, make_engine):
    """A charge of another product in the window (the same key used elsewhere): the job
    may or may not be charged, so it stays unknown, saying what the ledger showed."""
    sim = make_sim(seed=7)
    engine = await engine_for(make_engine, sim, policy=FAST_POLICY)
    await engine.start()
    sim.state.write_ledger("zai-org-glm-5-1-llm-output-mtoken", -0.0006, "chatcmpl-1")
    [lost] = await engine.add([req("[sim:unheard] a marten")])
    await engine.wait_idle()
    await engine.add([req("a later clip")])
    deadline = time.monotonic() + 10
    while not any("no job explains" in d for d in await timeline(engine.store, lost.id)):
        assert time.monotonic() < deadline, await timeline(engine.store, lost.id)
        await engine.clock.sleep(0.1)
    assert (await engine.store.get(lost.id)).state == JobState.UNKNOWN


# ---------------------------------------------------------------- after a SIGKILL


def start(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tui.cli", *args], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_after_a_sigkill_during_submits_a_later_start_settles_what_the_ledger_proves(
        make_sim, tmp_path):
    # The last job runs 9-15 s: the final watch is still following it when the ledger moves
    # on (a few seconds after that watch starts), even on a loaded machine.
    sim = make_sim(seed=8, mean_s=0.5, model_means={"wan-2-7-text-to-video": 12.0})
    home = tmp_path / "home"
    env = sim_env(sim, home)
    batch = tmp_path / "batch.jsonl"
    prompts = ["a fox", "[sim:noanswer] a lynx", "a hare", "[sim:unheard] an otter", "a mole"]
    # The otter's model differs from the lynx's: its window (opened right after the next
    # start) also holds the lynx's charge, which would otherwise be either job's.
    models = [T2V, T2V, T2V, "kling-2.6-pro-text-to-video", "wan-2-7-text-to-video"]
    batch.write_text("".join(json.dumps({"model": m, "prompt": p, "duration": "5s"}) + "\n"
                             for m, p in zip(models, prompts, strict=True)))

    def withheld(charged: bool) -> bool:
        return any(status == 0 and was == charged for _, was, status in sim.state.queue_calls)

    # 1. the engine batch started, killed while Venice charged the lynx but its answer
    #    never came
    recorded = start(env, "batch", str(batch), "--yes")
    assert kill_engine_when(home, lambda: withheld(True))
    assert recorded.wait(timeout=60) == 0
    # 2. a watch (a client) starts the next engine: it settles the lynx from the ledger;
    #    killed while the otter's request hangs (Venice read it and did nothing: no charge)
    final = start(env, "watch")
    assert kill_engine_when(home, lambda: withheld(False))
    db = home / "history.db"
    lynx, otter = (next(j for j in stored_jobs(db) if j.prompt == p) for p in prompts[1::2])
    # 3. the watch starts another engine and follows to the end. The otter's window ends
    #    after that start; the ledger proves it uncharged once it records something later:
    #    another use of the same key.
    deadline = time.monotonic() + 60
    while {j.id: j for j in stored_jobs(db)}[otter.id].state != JobState.UNKNOWN:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(2.0)  # past the window (its skew is 1.2 s at the tests' time scale)
    sim.state.write_ledger("zai-org-glm-5-1-llm-output-mtoken", -0.0006, "chatcmpl-2")
    stdout, stderr = final.communicate(timeout=120)
    jobs = {j.id: j for j in stored_jobs(db)}
    events = {i: [e.detail for e in _events(db, i)] for i in (lynx.id, otter.id)}
    assert "Traceback" not in stderr
    charged = [rid for rid, was, status in sim.state.queue_calls if status == 0 and was]
    assert jobs[lynx.id].state == JobState.DONE, (events, stderr[-3000:])
    assert jobs[lynx.id].remote_id == charged[0]
    assert any("settled from the Venice ledger: charged" in d and charged[0] in d
               for d in events[lynx.id]), events[lynx.id]
    assert jobs[otter.id].state == JobState.CANCELLED, events[otter.id][2:]
    assert jobs[otter.id].cost_usd == 0.0
    assert any("settled from the Venice ledger: not charged" in d
               for d in events[otter.id]), events[otter.id]
    others = [j for j in jobs.values() if j.id not in (lynx.id, otter.id)]
    assert all(j.state == JobState.DONE for j in others)
    assert len(sim.state.queue_calls) == len(prompts)  # nothing was sent twice
    # Nothing is left for the user to settle; the otter's video was never made, so the watch
    # ends as "not done" for it, saying why.
    assert "unknown" not in stderr and "resolve" not in stderr, stderr[-2000:]
    assert final.returncode == 1 and "1 not done" in stdout, stdout[-2000:]


def _events(db: Path, job_id: int):
    import asyncio

    async def read():
        async with await open_store(db) as st:
            return await st.events(job_id)
    return asyncio.run(read())
