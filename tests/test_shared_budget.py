"""One rate budget per provider key, shared by a team's engines through the database
(tui/engine/sharedbudget.py): on a real PostgreSQL (tests/pg.py), engines as separate OS
processes against the simulator, each on its own store connection."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import psycopg
import pytest
from conftest import T2V, VENICE_KEY, eventually

from tui.bench.shared_budget import (
    engine_result,
    record_calls,
    run_team,
    start_engine,
    team_clock,
)
from tui.engine.budget import RequestBudget
from tui.engine.clock import ManualClock
from tui.engine.sharedbudget import REFRESH_S, SharedRequestBudget, budget_for, key_id
from tui.jobs import JobRequest
from tui.providers.base import RateInfo, RateLimited
from tui.providers.venice import VeniceProvider
from tui.sim.server import SimServer
from tui.sim.state import Faults, SimConfig
from tui.store import Store, open_store

KEY = "venice:abc123"


@pytest.fixture(params=["sqlite", "postgresql"])
async def target(request, tmp_path: Path) -> str | Path:
    """The same store methods on both backends (the engines use them on PostgreSQL only)."""
    if request.param == "sqlite":
        return tmp_path / "history.db"
    return request.getfixturevalue("pg_dsn")


# ------------------------------------------------------------------ the store's slots


async def test_concurrent_takers_never_share_the_last_slot(target) -> None:
    """Four connections (engines) race for a key with 5 slots: 5 are granted, all told,
    and every refusal says how long until the oldest leaves the window."""
    stores = [await open_store(target) for _ in range(4)]
    try:
        answers = await asyncio.gather(*(
            s.take_rate_slot(KEY, "queue", 5, 1000.0 + i / 100, f"e{n}")
            for i in range(6) for n, s in enumerate(stores)))
        granted = [a for a in answers if a.wait_s == 0.0]
        assert len(granted) == 5
        assert sorted(a.used for a in granted) == [1, 2, 3, 4, 5]
        refused = [a for a in answers if a.wait_s > 0]
        assert len(refused) == 19 and all(55.0 < a.wait_s <= 60.0 for a in refused)
        # Another class, and another key, have budgets of their own.
        assert (await stores[0].take_rate_slot(KEY, "retrieve", 5, 1001.0, "e0")).wait_s == 0
        assert (await stores[0].take_rate_slot("venice:other", "queue", 5, 1001.0,
                                               "e0")).wait_s == 0
        # Still full a second before the minute is up; empty once the grants left it.
        assert (await stores[1].take_rate_slot(KEY, "queue", 5, 1059.0, "e1")).wait_s > 0.9
        assert (await stores[1].rate_state(KEY, "queue", 1070.0)).used == 0
        later = await stores[1].take_rate_slot(KEY, "queue", 5, 1070.0, "e1")
        assert later.wait_s == 0.0 and later.used == 1
    finally:
        for s in stores:
            await s.close()


async def test_a_block_closes_the_key_for_every_connection(target) -> None:
    a, b = await open_store(target), await open_store(target)
    try:
        await a.block_rate(KEY, "retrieve", 1030.0)
        await a.block_rate(KEY, "retrieve", 1010.0)  # an earlier block never shortens it
        slot = await b.take_rate_slot(KEY, "retrieve", 100, 1000.0, "b")
        assert slot.wait_s == pytest.approx(30.0) and slot.blocked_until == 1030.0
        assert (await b.take_rate_slot(KEY, "queue", 100, 1000.0, "b")).wait_s == 0.0
        assert (await b.take_rate_slot(KEY, "retrieve", 100, 1030.0, "b")).wait_s == 0.0
        assert (await a.rate_state(KEY, "retrieve", 1031.0)).used == 1
    finally:
        await a.close()
        await b.close()


async def test_rows_that_left_the_window_are_pruned(pg_dsn: str) -> None:
    store = await open_store(pg_dsn)
    try:
        for i in range(64):
            assert (await store.take_rate_slot(KEY, "queue", 1000, 1000.0 + 2 * i,
                                               "e")).wait_s == 0.0
    finally:
        await store.close()
    with psycopg.connect(pg_dsn) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM rate_spend").fetchone()
    # The 64th grant (at 1126) pruned what left its window (at <= 1066): 30 rows are left.
    assert rows == 30


# ------------------------------------------------------------------ the budget in an engine


async def test_a_team_engine_shares_its_budgets_and_one_person_keeps_its_own(
        pg_dsn: str, tmp_path: Path, sim: SimServer) -> None:
    from tui.engine import Engine

    for target, shared in ((tmp_path / "history.db", False), (pg_dsn, True)):
        store = await open_store(target)
        provider = VeniceProvider(sim.url("venice"), VENICE_KEY)
        try:
            engine = Engine(store, {"venice": provider}, output_dir=tmp_path / "v", rescan_s=0)
            kinds = {type(b) for b in engine.budgets.values()}
            assert kinds == ({SharedRequestBudget} if shared else {RequestBudget})
            if shared:
                budget = engine.budget("venice", "queue")
                assert isinstance(budget, SharedRequestBudget)
                assert budget.key_id == key_id("venice", provider)
                assert VENICE_KEY not in budget.key_id
        finally:
            await provider.aclose()
            await store.close()


def test_a_key_is_named_by_a_hash_never_by_itself() -> None:
    one = VeniceProvider("http://127.0.0.1:1", "team-key-1")
    same = VeniceProvider("http://127.0.0.1:2", "team-key-1")
    other = VeniceProvider("http://127.0.0.1:1", "team-key-2")
    assert key_id("venice", one) == key_id("venice", same)
    assert key_id("venice", one) != key_id("venice", other)
    assert "team-key" not in key_id("venice", one)
    assert key_id("venice", one).startswith("venice:") and len(key_id("venice", one)) == 19


async def test_two_budgets_on_one_key_share_its_window_and_two_keys_do_not(pg_dsn) -> None:
    """Two engines' budgets (own connections) on one key with 4 a minute, and a third on
    another key: the first two get 4 slots together in a minute, the third 4 of its own."""
    clock = ManualClock()
    stores = [await open_store(pg_dsn, clock=clock.now) for _ in range(3)]
    keys = ["venice:aaaa", "venice:aaaa", "venice:bbbb"]
    budgets = [SharedRequestBudget(4, clock, store=s, key=k, rate_class="queue")
               for s, k in zip(stores, keys, strict=True)]
    try:
        start = clock.now()
        for _ in range(2):
            await budgets[0].acquire()
            await budgets[1].acquire()
        for _ in range(4):
            await budgets[2].acquire()
        assert clock.now() == start  # nothing waited: 4 on each key
        assert budgets[1].used == 4 and budgets[2].used == 4  # the key's, not its own 2
        await budgets[1].acquire()  # the fifth on the key waits for its oldest to leave
        assert clock.now() - start >= 60.0
        assert budgets[0].total_requests + budgets[1].total_requests == 5
    finally:
        for b in budgets:
            await b.aclose()
        for s in stores:
            await s.close()


async def test_a_429_seen_by_one_engine_makes_the_others_wait(pg_dsn, make_sim) -> None:
    """A real 429 from the simulator, with its Retry-After, reaches engine A's budget;
    engine B (another connection) waits it out before its next call."""
    sim = make_sim(Faults(queue_limit_per_min=2), real_limits=True)
    clock = ManualClock(time.time())
    stores = [await open_store(pg_dsn, clock=clock.now) for _ in range(2)]
    providers = [VeniceProvider(sim.url("venice"), VENICE_KEY) for _ in range(2)]
    budgets = [SharedRequestBudget(40, clock, store=s, key=key_id("venice", p),
                                   rate_class="queue") for s, p in zip(stores, providers,
                                                                        strict=True)]
    for budget, provider in zip(budgets, providers, strict=True):
        provider.rate_observer = lambda cls, info, b=budget: b.observe(info)
    try:
        answers = []
        for _ in range(3):  # the third is over the simulator's 2 a minute
            await budgets[0].acquire()
            try:
                await providers[0].quote(JobRequest(model=T2V, prompt="a fox"))
                answers.append("ok")
            except RateLimited:
                answers.append("429")
        assert answers == ["ok", "ok", "429"] and budgets[0].total_throttled == 1
        retry = budgets[0].blocked_until - clock.now()
        assert retry > 1
        deadline = time.monotonic() + 30  # the block is written in the background
        while not (await stores[1].rate_state(budgets[0].key_id, "queue", clock.now())
                   ).blocked_until > clock.now():
            assert time.monotonic() < deadline, "the block never reached the database"
            await asyncio.sleep(0.02)
        start = clock.now()
        await budgets[1].acquire()
        assert clock.now() - start >= retry - 0.5
    finally:
        for b in budgets:
            await b.aclose()
        for p in providers:
            await p.aclose()
        for s in stores:
            await s.close()


async def test_a_database_that_fails_falls_back_to_the_local_window(pg_dsn, caplog) -> None:
    """The history goes away under a budget: calls are still granted by this engine's own
    window (the engine does not stop), and that is logged once."""
    clock = ManualClock()
    store = await open_store(pg_dsn, clock=clock.now)
    budget = SharedRequestBudget(3, clock, store=store, key=KEY, rate_class="retrieve")
    try:
        await budget.acquire()
        assert budget.fallbacks == 0
        await store.close()  # every statement now fails
        with caplog.at_level(logging.WARNING, logger="wan_tui.engine.budget"):
            for _ in range(2):
                await asyncio.wait_for(budget.acquire(), 5)
            start = clock.now()
            await asyncio.wait_for(budget.acquire(), 5)  # the local window is full: waits
        assert clock.now() - start >= 59.0 and budget.fallbacks == 3
        said = [r for r in caplog.records if "did not answer" in r.getMessage()]
        assert len(said) == 1 and "counting this engine's own requests" in said[0].getMessage()
    finally:
        await budget.aclose()


# ------------------------------------------------------------------ engines as processes

SCALE = 0.05  # the team's clock runs 20x faster than the wall: a minute is 3 s
# A block lasts a Retry-After of the key's minute: 12 s of wall here, so that on a loaded
# box the test still sees it before it ends and starts beta inside it.
BLOCK_SCALE = 0.2
QUEUE_LIMIT = 6
RETRIEVE_LIMIT = 15
ENGINES = 3
JOBS_EACH = 5


def _run_engines(folder: Path, dsn: str | None) -> dict:
    """Three engine processes (tui.bench.shared_budget's) on one Venice key, on the team's
    database (dsn) or each on its own SQLite history (None: per-engine local budgets)."""
    return run_team(folder, dsn, engines=ENGINES, jobs_each=JOBS_EACH, scale=SCALE,
                    models={T2V: 40.0}, queue_limit=QUEUE_LIMIT,
                    retrieve_limit=RETRIEVE_LIMIT, timeout_s=240)


def test_engines_on_one_key_stay_under_its_limit_together(pg_dsn, tmp_path) -> None:
    """Three engine processes on one key through PostgreSQL: no 60 s window of the
    simulator's holds more calls than the key's limit, every job is done, and the simulator
    answers no 429."""
    run = _run_engines(tmp_path / "shared", pg_dsn)
    results, stats = run["results"], run["stats"]
    assert [r["budget"] for r in results] == ["SharedRequestBudget"] * ENGINES
    assert all(r["states"] == ["done"] * JOBS_EACH for r in results), results
    assert stats["queue_calls"] == ENGINES * JOBS_EACH  # one paid submit per job
    assert run["most"]["queue"] <= QUEUE_LIMIT, run["most"]
    assert run["most"]["retrieve"] <= RETRIEVE_LIMIT, run["most"]
    assert stats["rate_limited"] == 0, stats["by_status"]
    assert sum(r["slots"] for r in results) >= len(run["calls"])  # every call took a slot
    with psycopg.connect(pg_dsn) as conn:
        engines = conn.execute("SELECT DISTINCT engine FROM rate_spend ORDER BY 1").fetchall()
        keys = conn.execute("SELECT DISTINCT key_id FROM rate_spend").fetchall()
    assert [e for (e,) in engines] == [f"machine-{n}" for n in range(ENGINES)]
    assert len(keys) == 1 and VENICE_KEY not in keys[0][0]


def test_without_the_shared_budget_the_same_engines_overrun_the_key(tmp_path) -> None:
    """The control: the same three engines, each with its own history (so its own budget,
    as before this change), send more than the key's limit in a minute and get 429s. The
    test above would fail without the shared budget."""
    run = _run_engines(tmp_path / "local", None)
    results = run["results"]
    assert [r["budget"] for r in results] == ["RequestBudget"] * ENGINES
    assert run["most"]["queue"] > QUEUE_LIMIT, run["most"]
    assert run["stats"]["rate_limited"] > 0 and sum(r["throttled"] for r in results) > 0


def test_a_429_one_engine_process_gets_makes_another_wait(pg_dsn, tmp_path) -> None:
    """Engine A (a process) is answered 429 with a Retry-After (its key's submits were spent
    by someone it does not know of); engine B, a process started once A's block is in the
    database, sends nothing before the block ends, and is not answered 429 itself."""
    origin = time.time()
    clock = team_clock(origin, BLOCK_SCALE)
    config = SimConfig(mean_s=20.0, seed=3, video_seconds=0.5,
                       faults=Faults(queue_limit_per_min=2, failure_block_threshold=0))
    with SimServer.running(config, clock=clock.now, rate_clock=clock.now) as sim:
        calls = record_calls(sim, clock)

        async def spend_the_key() -> None:  # another client of the key, outside the team
            provider = VeniceProvider(sim.url("venice"), VENICE_KEY)
            try:
                for _ in range(2):
                    await provider.quote(JobRequest(model=T2V, prompt="elsewhere"))
            finally:
                await provider.aclose()

        asyncio.run(spend_the_key())
        a = start_engine(tmp_path, pg_dsn, "alpha", sim.url("venice"), origin, BLOCK_SCALE, 1,
                         [T2V])
        b = None
        try:
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                # An engine process starts in a second or two; many on a loaded box.
                deadline = time.monotonic() + 60
                row = None
                while row is None and time.monotonic() < deadline:
                    if conn.execute("SELECT to_regclass('rate_blocks') IS NOT NULL"
                                    ).fetchone()[0]:
                        row = conn.execute("SELECT blocked_until FROM rate_blocks WHERE"
                                           " rate_class = 'queue'").fetchone()
                    time.sleep(0.01)
            assert row, "engine alpha published no block"
            (blocked_until,) = row
            assert blocked_until > clock.now()  # still closed when beta starts
            b = start_engine(tmp_path, pg_dsn, "beta", sim.url("venice"), origin, BLOCK_SCALE, 1,
                             [T2V])
            results = [engine_result(child, 120) for child in (a, b)]
        finally:
            for child in (a, b):
                if child is not None and child.poll() is None:
                    child.kill()
                    child.wait()
    assert [r["states"] for r in results] == [["done"], ["done"]]
    queue = [(at, ok) for cls, at, ok in calls if cls == "queue"]
    refused = [at for at, ok in queue if not ok]
    assert len(refused) == 1 and results[0]["throttled"] >= 1  # alpha's first submit only
    assert results[1]["throttled"] == 0
    after = [at for at, ok in queue[2:] if ok]  # the team's submits, alpha's retry and beta's
    assert len(after) == 2 and min(after) >= blocked_until


async def test_status_shows_the_keys_shared_use(pg_dsn) -> None:
    """What `engine status` publishes as `used` is the key's use by every engine."""
    clock = ManualClock()
    stores: list[Store] = [await open_store(pg_dsn) for _ in range(2)]
    provider = VeniceProvider("http://127.0.0.1:9", VENICE_KEY)
    mine, other = (budget_for(s, "venice", provider, "retrieve", 100, clock)
                   for s in stores)
    try:
        for _ in range(3):
            await other.acquire()
        await mine.acquire()
        assert mine.used == 4  # the database's count, taken with our slot
        for _ in range(2):
            await other.acquire()
        assert mine.used == 4  # news is not asked for at every look...
        clock.advance(REFRESH_S + 1)  # ...but once it is old, the next look asks again
        await eventually(lambda: mine.used == 6)
        assert mine.used == 6
        assert isinstance(mine, SharedRequestBudget)
    finally:
        for b in (mine, other):
            await b.aclose()
        await provider.aclose()
        for s in stores:
            await s.close()


async def test_observed_zero_remaining_blocks_the_key_until_its_reset(pg_dsn) -> None:
    clock = ManualClock()
    a, b = await open_store(pg_dsn), await open_store(pg_dsn)
    first = SharedRequestBudget(40, clock, store=a, key=KEY, rate_class="queue")
    second = SharedRequestBudget(40, clock, store=b, key=KEY, rate_class="queue")
    try:
        first.observe(RateInfo(limit=40, remaining=0, reset_at=clock.now() + 25))
        async def blocked() -> float:
            return (await b.rate_state(KEY, "queue", clock.now())).blocked_until

        await eventually(blocked)
        start = clock.now()
        await second.acquire()
        assert clock.now() - start >= 24.0
    finally:
        await first.aclose()
        await second.aclose()
        await a.close()
        await b.close()
