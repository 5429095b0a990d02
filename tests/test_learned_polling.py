"""Providers without an estimate: the engine learns run times from history.

The engine and the simulator share one manual clock, so two-minute jobs run in
milliseconds and polls are counted exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from conftest import T2V, VENICE_KEY, eventually, roomy

from tui.engine import Engine, JobChanged
from tui.engine.clock import ManualClock
from tui.engine.schedule import PollPolicy
from tui.jobs import Job, JobRequest, JobState
from tui.providers.apixo import ApixoProvider
from tui.providers.venice import VeniceProvider
from tui.query import JobQuery
from tui.sim.server import SimServer
from tui.sim.state import SimConfig

MEAN_S = 120.0


async def polls_for_sequential_jobs(engine: Engine, request: JobRequest, count: int) -> list[int]:
    """Run `count` jobs one after another (a manual clock is exact for one sleeper)."""
    polls = []
    for i in range(count):
        (job,) = await engine.add([JobRequest(**{**request.to_dict(), "prompt": f"job {i}"})])
        await asyncio.wait_for(engine.wait_idle(), 30)
        finished = await engine.store.get(job.id)
        assert finished.state == JobState.DONE
        polls.append(engine.polls[job.id])
    return polls


async def test_learned_durations_bring_polls_down_to_the_venice_level(store, tmp_path):
    clock = ManualClock()
    config = SimConfig(mean_s=MEAN_S, video_seconds=0.5, seed=4, faults=roomy())
    with SimServer.running(config, clock=clock.now) as sim:
        apixo = ApixoProvider(sim.url("apixo"), "sim-apixo-key")
        venice = VeniceProvider(sim.url("venice"), VENICE_KEY)
        engine = Engine(store, {"apixo": apixo, "venice": venice},
                        output_dir=tmp_path / "videos", clock=clock, policy=PollPolicy(),
                        rescan_s=0)
        await engine.start(resume=False)
        try:
            ten = await polls_for_sequential_jobs(
                engine, JobRequest(provider="apixo", model="wan-2-5-t2v", prompt="x"), 10)
            after = await polls_for_sequential_jobs(
                engine, JobRequest(provider="apixo", model="wan-2-5-t2v", prompt="x"), 5)
            venice_level = await polls_for_sequential_jobs(
                engine, JobRequest(model="wan-2.5-preview-text-to-video", prompt="x"), 5)
        finally:
            await engine.stop()
            await apixo.aclose()
            await venice.aclose()
    # Before any history the schedule has to guess (5 s, then a tenth of the elapsed time);
    # the first jobs cost far more polls than the ones after ten finished jobs.
    assert sum(ten[:3]) / 3 > 1.5 * (sum(after) / 5), (ten, after)
    # With ten run times learned, a job costs no more polls than a Venice job, whose
    # estimate comes from the server.
    assert sum(after) / 5 <= sum(venice_level) / 5 + 0.5, (after, venice_level)
    learned = (await store.list_jobs(JobQuery(provider="apixo"), limit=1))[0].estimate_s
    assert learned is not None and MEAN_S * 0.75 <= learned <= MEAN_S * 1.25


async def test_a_job_already_running_gets_the_learned_estimate_once_its_model_has_history(
        store, tmp_path):
    clock = ManualClock()
    model = "wan-2-5-t2v"
    config = SimConfig(mean_s=3000.0, video_seconds=0.5, seed=4, faults=roomy())
    with SimServer.running(config, clock=clock.now) as sim:
        apixo = ApixoProvider(sim.url("apixo"), "sim-apixo-key")
        engine = Engine(store, {"apixo": apixo}, output_dir=tmp_path / "videos", clock=clock,
                        policy=PollPolicy(), rescan_s=0)
        await engine.start(resume=False)
        try:
            (job,) = await engine.add([JobRequest(provider="apixo", model=model, prompt="x")])
            # It is being followed, with no history to learn from.
            await eventually(lambda: engine.polls[job.id] >= 2)
            assert (await store.get(job.id)).estimate_s is None
            # Meanwhile three jobs of the same model finish (here: seeded as finished).
            now = clock.now()
            finished = [Job(0, JobRequest(provider="apixo", model=model, prompt=f"old {n}"),
                            JobState.DONE, now - 900, now, submitted_at=now - 900,
                            ready_at=now - 900 + run, finished_at=now - 900 + run)
                        for n, run in enumerate((200.0, 240.0, 260.0))]
            await store.bulk_insert_for_benchmark(finished)
            await asyncio.wait_for(engine.wait_idle(), 30)
        finally:
            await engine.stop()
            await apixo.aclose()
    events = [e.detail for e in await store.events(job.id)]
    assert (await store.get(job.id)).estimate_s == 260.0  # P80 of the three
    assert "saved" in " ".join(events)  # it ran to the end with its new estimate


async def test_no_early_poll_once_a_sibling_or_the_history_knows_the_model(store, tmp_path):
    # Job A is the first of its model: it asks 3 s in, and its answer carries Venice's
    # estimate. Job B (same engine) and job C (a new engine on the same history) know the
    # model: their first poll goes where a job could first be done.
    clock = ManualClock()
    config = SimConfig(mean_s=MEAN_S, video_seconds=0.5, seed=4, faults=roomy())
    first_poll: dict[int, float] = {}  # job id → seconds after its submit

    def on_event(event: object) -> None:
        if (isinstance(event, JobChanged) and event.previous == JobState.QUEUED
                and event.transition):
            first_poll.setdefault(event.job.id, clock.now() - event.job.submitted_at)

    @asynccontextmanager
    async def engine_on(sim: SimServer) -> AsyncIterator[Engine]:
        """A fresh engine over the same history (a new process, as far as it knows)."""
        venice = VeniceProvider(sim.url("venice"), VENICE_KEY)
        engine = Engine(store, {"venice": venice}, output_dir=tmp_path / "videos",
                        clock=clock, policy=PollPolicy(), rescan_s=0)
        engine.subscribe(on_event)
        await engine.start(resume=False)
        try:
            yield engine
        finally:
            await engine.stop()
            await venice.aclose()

    async def run(engine: Engine, prompt: str) -> Job:
        (job,) = await engine.add([JobRequest(model=T2V, prompt=prompt)])
        await asyncio.wait_for(engine.wait_idle(), 30)
        return job

    with SimServer.running(config, clock=clock.now) as sim:
        async with engine_on(sim) as engine:
            # A fails once finished: it teaches the estimate, but no run time
            a = await run(engine, "a [sim:fail]")
            b = await run(engine, "b")
        async with engine_on(sim) as engine:
            c_id = (await run(engine, "c")).id
        estimate = sim.state.p80_s(T2V)
    assert (await store.get(a.id)).state == JobState.FAILED
    assert (await store.get(b.id)).state == JobState.DONE
    assert (await store.get(c_id)).state == JobState.DONE
    assert first_poll[a.id] <= PollPolicy().first_poll_s + 0.5
    assert first_poll[b.id] >= 0.38 * estimate  # from A's answer
    assert first_poll[c_id] >= 0.38 * estimate  # from B's run time in the history
