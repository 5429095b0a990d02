"""A shared request budget per provider key and rate class ("queue", "retrieve").

Local bookkeeping (a sliding 60-second window) keeps us under the limit we know; the
server's own `x-ratelimit-*` headers correct it (another process may share the key, the
limit may differ from the default); a 429's Retry-After closes the budget until then.
When requests must wait, the job most likely to be finished goes first.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable

from tui.engine.clock import Clock
from tui.providers.base import RateInfo

WINDOW_S = 60.0


class RequestBudget:
    def __init__(self, limit_per_min: int, clock: Clock, *,
                 on_change: Callable[[RequestBudget], None] | None = None) -> None:
        self.limit = max(1, limit_per_min)
        self.clock = clock
        self.on_change = on_change
        self._sent: deque[float] = deque()  # times of requests in the current window
        self._server_remaining: int | None = None
        self._server_reset: float | None = None
        self.blocked_until: float = 0.0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._pump_task: asyncio.Task[None] | None = None
        self.total_requests = 0
        self.total_throttled = 0  # 429s seen

    # ------------------------------------------------------------ what the server said

    def observe(self, info: RateInfo) -> None:
        if info.limit:
            self.limit = info.limit
        if info.remaining is not None:
            self._server_remaining = info.remaining
            self._server_reset = info.reset_at
        if info.retry_after is not None:
            self.total_throttled += 1
            self.block_for(info.retry_after)
        self._changed()

    def block_for(self, seconds: float) -> None:
        self.blocked_until = max(self.blocked_until, self.clock.now() + seconds)

    # ------------------------------------------------------------ spending

    @property
    def used(self) -> int:
        self._expire(self.clock.now())
        return len(self._sent)

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - WINDOW_S:
            self._sent.popleft()

    def _wait_needed(self) -> float:
        """Seconds until one more request fits, 0 if it fits now."""
        now = self.clock.now()
        self._expire(now)
        waits = [self.blocked_until - now]
        if len(self._sent) >= self.limit:
            waits.append(self._sent[0] + WINDOW_S - now)
        if self._server_remaining is not None and self._server_remaining <= 0:
            # The server says none left (maybe another process spent them) until its reset.
            reset = self._server_reset if self._server_reset else now + 1.0
            waits.append(reset - now if reset > now else 0.0)
            if reset <= now:
                self._server_remaining = None
        return max(0.0, *waits)

    def _take(self) -> None:
        self._sent.append(self.clock.now())
        self.total_requests += 1
        if self._server_remaining is not None:
            self._server_remaining -= 1
        self._changed()

    async def acquire(self, priority: float = 0.0) -> None:
        """Wait for a slot. Higher priority goes first when slots are short."""
        if not self._waiters and self._wait_needed() <= 0:
            self._take()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, next(self._seq), fut))
        self._ensure_pump()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and self._sent:
                # We were granted a slot but cancelled before using it: give it back.
                self._sent.pop()
            raise

    def _ensure_pump(self) -> None:
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        # One task hands out slots in priority order as they free up.
        while self._waiters:
            wait = self._wait_needed()
            if wait > 0:
                await self.clock.sleep(min(wait, 1.0))
                continue
            _, _, fut = heapq.heappop(self._waiters)
            if fut.cancelled():
                continue
            self._take()
            fut.set_result(None)
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        """Stop handing out slots (the engine's stop): the pump and every waiter end."""
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, return_exceptions=True)
        for _, _, fut in self._waiters:
            fut.cancel()
        self._waiters.clear()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self._waiters if not f.done())

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)
