"""The shared request budget, on a manual clock."""

from __future__ import annotations

import asyncio

from tui.engine.budget import RequestBudget
from tui.engine.clock import ManualClock
from tui.providers.base import RateInfo


async def test_local_window_holds_requests_to_the_limit():
    clock = ManualClock()
    budget = RequestBudget(3, clock)
    for _ in range(3):
        await budget.acquire()
    start = clock.now()
    await budget.acquire()  # the fourth waits for the oldest to leave the 60 s window
    assert clock.now() - start >= 59.0
    assert budget.total_requests == 4


async def test_server_headers_and_retry_after_close_the_budget():
    clock = ManualClock()
    budget = RequestBudget(100, clock)
    budget.observe(RateInfo(limit=50, remaining=0, reset_at=clock.now() + 20))
    assert budget.limit == 50
    start = clock.now()
    await budget.acquire()
    assert clock.now() - start >= 19.0
    budget.observe(RateInfo(retry_after=7.0))
    start = clock.now()
    await budget.acquire()
    assert clock.now() - start >= 6.0 and budget.total_throttled == 1


async def test_short_budget_serves_the_likeliest_finished_job_first():
    clock = ManualClock()
    budget = RequestBudget(1, clock, max_gap_s=1000.0)  # nobody starves in these 2 minutes
    await budget.acquire()
    order: list[str] = []

    async def want(name: str, priority: float) -> None:
        await budget.acquire(priority)
        order.append(name)

    await asyncio.gather(want("just started", 0.1), want("overdue", 1.5), want("halfway", 0.5))
    assert order == ["overdue", "halfway", "just started"]


async def test_a_priority_function_is_asked_when_the_slot_frees():
    # Two jobs wait for one slot; while they wait, the one that looked less likely to be
    # done becomes the likelier (its chance grows with time): it gets the slot.
    clock = ManualClock()
    budget = RequestBudget(1, clock)
    await budget.acquire()
    t0 = clock.now()
    order: list[str] = []

    async def want(name: str, priority) -> None:
        await budget.acquire(priority)
        order.append(name)

    rising = lambda: (clock.now() - t0) / 60  # noqa: E731 -- 0 now, 1 when the slot frees
    await asyncio.gather(want("steady", 0.5), want("rising", rising))
    assert order == ["rising", "steady"]


async def test_no_job_starves_behind_likelier_ones():
    # One request a minute; a likely-done job asks again each time it is served and would
    # always win on priority. The unlikely job gets a slot once it has waited max_gap_s.
    clock = ManualClock()
    budget = RequestBudget(1, clock, max_gap_s=120.0)
    await budget.acquire()
    asked = clock.now()
    served: list[tuple[str, float]] = []

    async def eager() -> None:
        for _ in range(6):
            await budget.acquire(0.9)
            served.append(("eager", clock.now()))

    async def unlikely() -> None:
        await budget.acquire(0.01)
        served.append(("unlikely", clock.now()))

    await asyncio.gather(eager(), unlikely())
    when = dict(served)["unlikely"]
    assert 120.0 <= when - asked <= 120.0 + 60.0  # the bound, plus one slot of the window
    assert [name for name, _ in served].index("unlikely") == 1  # without it: last
    assert [name for name, _ in served].count("eager") == 6
    assert budget.total_requests == 8


async def test_cancelled_waiters_give_their_turn_away():
    clock = ManualClock()
    budget = RequestBudget(1, clock)
    await budget.acquire()
    gone = asyncio.ensure_future(budget.acquire(0.9))
    await asyncio.sleep(0)
    gone.cancel()
    await budget.acquire(0.1)
    assert budget.total_requests == 2 and budget.waiting == 0
