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
    budget = RequestBudget(1, clock)
    await budget.acquire()
    order: list[str] = []

    async def want(name: str, priority: float) -> None:
        await budget.acquire(priority)
        order.append(name)

    await asyncio.gather(want("just started", 0.1), want("overdue", 1.5), want("halfway", 0.5))
    assert order == ["overdue", "halfway", "just started"]
