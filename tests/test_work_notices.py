"""An engine on a team's PostgreSQL looks for work only when a commit may give it some.

Every commit to jobs and requests notifies every window (they show each change); the
commits that may give an engine work carry payload 'work' as well (schema version 11):
a job recorded, claimed or given back, put back to pending or made active again, a request
posted. The engine's inbox watches Store.work_version, so another engine's poll results
and progress no longer make it take requests and rescan five times a second. Real
PostgreSQL (tests/pg.py), a real engine on the simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from conftest import T2V, eventually, sim_env

from tui.jobs import ACTIVE_STATES, JobRequest, JobState
from tui.store import Store, open_store
from tui.store import schema as store_schema

S = JobState
SENTINEL = "test sentinel"


def req(prompt: str = "a fox") -> JobRequest:
    return JobRequest(model=T2V, prompt=prompt)


def test_the_triggers_active_states_are_the_jobs_active_states() -> None:
    spelled = {s.strip().strip("'") for s in store_schema._ACTIVE_STATES.split(",")}
    assert spelled == {s.value for s in ACTIVE_STATES}


async def _payloads_of(listener: psycopg.AsyncConnection[Any], admin: psycopg.AsyncConnection[Any],
                       write: Callable[[], Awaitable[object]]) -> list[str]:
    """What `write` notified on wan_tui, in order: everything received until a sentinel
    sent after it (notices arrive in commit order, so nothing of the write's comes later)."""
    await write()
    await admin.execute(f"NOTIFY wan_tui, '{SENTINEL}'")
    payloads: list[str] = []
    async for notice in listener.notifies(timeout=10.0):
        if notice.payload == SENTINEL:
            return payloads
        payloads.append(notice.payload)
    raise AssertionError(f"the sentinel never came; got {payloads}")


async def test_only_commits_that_may_give_an_engine_work_say_so(pg_dsn, monkeypatch) -> None:
    """Every kind of write a team makes, and whether it tells engines 'work': windows are
    told of each (its table), engines only of jobs recorded, claimed or given back, put back
    to pending or made active again, and requests posted."""
    monkeypatch.setenv("WAN_TUI_ENGINE_NAME", "beta")
    beta = await open_store(pg_dsn)  # another machine's engine
    window = await open_store(pg_dsn)  # a window or command (`wan-tui resolve`)
    listener = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
    admin = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
    await listener.execute("LISTEN wan_tui")
    beta.fence_name = "beta"
    try:
        async def told(write: Callable[[], Awaitable[object]]) -> list[str]:
            return await _payloads_of(listener, admin, write)

        async def transition(job_id: int, state: JobState, **fields: Any) -> None:
            await beta.transition(job_id, state, "moved", **fields)

        # Recorded: work (one notice for a whole batch).
        added: list = []
        got = await told(lambda: _add(beta, added, 3))
        assert got.count("work") == 1, got
        first, second, third = added
        # Claimed (owner from nobody to beta): work for nobody else, but told (an engine
        # that waited for a request about it may now take it).
        got = await told(lambda: beta.claim_jobs("beta", 30.0))
        assert "work" in got, got
        for job in (first, second, third):
            beta.fenced[job.id] = 1
        # A batch's life: submitted, followed, polled, its leases renewed: not work.
        for write in (
            lambda: transition(first.id, S.SUBMITTING),
            lambda: transition(first.id, S.QUEUED, remote_id="r-1"),
            lambda: transition(first.id, S.PROCESSING, started_at=1.0),
            lambda: beta.update(first.id, progress=0.4),
            lambda: beta.update(first.id, progress=0.5, estimate_s=12.0),
            lambda: beta.renew_leases("beta", 30.0),
            lambda: transition(first.id, S.DOWNLOADING),
            lambda: transition(first.id, S.DONE, file="/v/1.mp4", bytes=10),
            lambda: beta.set_meta("engine:beta", "{}"),
        ):
            got = await told(write)
            assert "work" not in got, got
        # The window still hears about every one of those (it shows them).
        assert await told(lambda: beta.update(second.id, progress=0.1)) == ["jobs"]
        # A submit that was not sent goes back to pending: work.
        await transition(second.id, S.SUBMITTING)
        assert "work" in await told(lambda: transition(second.id, S.PENDING))
        # `wan-tui resolve --charged`: unknown made active again (queued): work.
        await transition(third.id, S.SUBMITTING)
        assert "work" not in await told(lambda: transition(third.id, S.UNKNOWN))
        got = await told(lambda: window.transition(third.id, S.QUEUED, "charged",
                                                   expect={S.UNKNOWN}, remote_id="r-3"))
        assert "work" in got, got
        # A request posted: work; taking and answering it is not.
        request: list[int] = []
        got = await told(lambda: _post(window, request))
        assert "work" in got, got
        assert "work" not in await told(lambda: beta.take_requests(1, "beta", 30.0))
        assert "work" not in await told(lambda: beta.finish_request(request[0], True, "ok"))
        # A job given back (its owner cleared, as nothing in wan-tui does yet): work.
        got = await told(lambda: admin.execute("UPDATE jobs SET owner = NULL WHERE id = %s",
                                               (second.id,)))
        assert "work" in got, got
    finally:
        await listener.close()
        await admin.close()
        await beta.close()
        await window.close()


async def _add(store: Store, into: list, count: int) -> None:
    into.extend(await store.add_jobs([req(f"take {i}") for i in range(count)]))


async def _post(store: Store, into: list[int]) -> None:
    into.append(await store.post_request("cancel", 1))


async def test_the_store_counts_work_apart_from_other_changes(pg_dsn, tmp_path) -> None:
    """work_version moves only with another connection's work notices, data_version with
    every notice; a store's own commits move neither (as SQLite's data_version)."""
    engine = await open_store(pg_dsn)
    other = await open_store(pg_dsn)
    try:
        (job,) = await other.add_jobs([req()])
        assert await engine.wait_for_change(0, 5.0)
        data, work = await engine.data_version(), await engine.work_version()
        for step in range(5):
            await other.update(job.id, progress=step / 10)
        # A request posted after them: once its notice is counted, theirs were (in order).
        await other.post_request("cancel", job.id)
        async def moved() -> bool:
            return await engine.work_version() != work

        await eventually(moved)
        assert await engine.work_version() == work + 1
        assert await engine.data_version() >= data + 6
        mine = await engine.work_version()
        await engine.add_jobs([req("its own")])
        await engine.post_request("stop", target="nobody")
        assert not await engine.wait_for_change(await engine.data_version(), 0.3)
        assert await engine.work_version() == mine
    finally:
        await engine.close()
        await other.close()
    # One person's file: one engine, no notices; every change is work (as before).
    path = tmp_path / "history.db"
    engine, other = await open_store(path), await open_store(path)
    try:
        before = await engine.work_version()
        await other.add_jobs([req()])
        assert await engine.work_version() != before
        assert await engine.work_version() == await engine.data_version()
    finally:
        await engine.close()
        await other.close()


async def _until(what: str, check: Callable[[], Awaitable[object]], timeout: float = 30.0
                 ) -> None:
    for _ in range(int(timeout / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_an_engine_ignores_other_engines_progress_and_acts_on_new_work(
        make_sim, pg_dsn, tmp_path, monkeypatch) -> None:
    """An engine (alpha) follows its jobs while another machine's engine (beta) writes
    progress, poll results and lease renewals for its own: alpha neither takes requests nor
    rescans for those. A job a window records, one it re-queues and a cancel it asks for
    are acted on at once, by the notice alone (the inbox's full look is switched off here,
    so nothing else could)."""
    from tui.config import load_config
    from tui.engine import host as host_module
    from tui.session import open_session

    sim = make_sim(mean_s=60.0)
    env = sim_env(sim, tmp_path / "alpha", WAN_TUI_DATABASE=pg_dsn,
                  WAN_TUI_ENGINE_NAME="alpha")
    monkeypatch.setattr(host_module, "FULL_LOOK_EVERY_S", 3600.0)
    monkeypatch.setenv("WAN_TUI_ENGINE_NAME", "beta")
    beta = await open_store(pg_dsn)  # another machine's engine
    beta.fence_name = "beta"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    window = await open_store(pg_dsn)  # a window on alpha's machine
    try:
        async with open_session(load_config(env), role="engine") as session:
            engine, store = session.engine, session.store
            counts = {"rescan": 0, "take_requests": 0}
            real_rescan, real_take = engine.rescan, store.take_requests

            async def rescan() -> None:
                counts["rescan"] += 1
                await real_rescan()

            async def take_requests(*args: Any) -> Any:
                counts["take_requests"] += 1
                return await real_take(*args)

            engine.rescan = rescan  # type: ignore[method-assign]
            store.take_requests = take_requests  # type: ignore[method-assign]
            await session.host.claim()  # follows the jobs, opens the inbox
            await _until("its first look", lambda: _true(counts["rescan"] >= 1))

            # beta's batch: recorded and claimed by beta (work: alpha looks, finds none).
            work = await store.work_version()
            others = await beta.add_jobs([req(f"beta {i}") for i in range(3)])
            claims = await beta.claim_jobs("beta", 30.0)
            beta.fenced.update({c.job_id: c.epoch for c in claims})
            # Two commits, two notices (a batch's rows are one): then alpha's look at them.
            await _until("alpha told of beta's batch",
                         lambda: _reached(store.work_version(), work + 2))
            await asyncio.sleep(5 * host_module.INBOX_EVERY_S)
            looked = dict(counts)
            seen = await session.reader.data_version()
            # beta follows its batch: submits, polls, progress, renewals, for 2 s.
            for job in others:
                await beta.transition(job.id, S.SUBMITTING, "sending")
                await beta.transition(job.id, S.QUEUED, "sent", remote_id=f"b-{job.id}")
            for step in range(20):
                for job in others:
                    await beta.update(job.id, progress=step / 20)
                if step % 5 == 0:
                    await beta.renew_leases("beta", 30.0)
                await asyncio.sleep(0.1)
            await asyncio.sleep(4 * host_module.INBOX_EVERY_S)
            assert await session.reader.data_version() != seen  # windows are told
            assert counts == looked, (counts, looked)  # the engine is not

            # A window on alpha records a job: alpha claims and submits it.
            (mine,) = await window.add_jobs([req("alpha's own")])
            await _until("alpha submits the new job", lambda: _state_of(
                store, mine.id, {S.QUEUED, S.PROCESSING}))
            # Re-queued from a window (a client's requeue: a new pending job and a note).
            (again,) = await window.add_jobs([mine.request])
            await window.update(mine.id, event=f"re-queued as job {again.id}")
            await _until("alpha submits the re-queued job", lambda: _state_of(
                store, again.id, {S.QUEUED, S.PROCESSING}))
            # A cancel asked from a window (another machine's, as much as this one's).
            request = await window.post_request("cancel", mine.id)
            await _until("alpha answers the cancel", lambda: _answered(window, request))
            assert (await window.get(mine.id)).state == S.CANCELLED  # type: ignore[union-attr]
            assert counts["take_requests"] > looked["take_requests"]
            assert len(sim.state.queue_calls) == 2  # alpha's two jobs, one submit each
    finally:
        await window.close()
        await beta.close()


async def _true(value: bool) -> bool:
    return value


async def _reached(version: Awaitable[int], target: int) -> bool:
    return await version >= target


async def _state_of(store: Store, job_id: int, states: set[JobState]) -> bool:
    job = await store.get(job_id)
    return job is not None and job.state in states


async def _answered(store: Store, request: int) -> bool:
    state, _, _ = await store.request_outcome(request)
    return state == "done"
