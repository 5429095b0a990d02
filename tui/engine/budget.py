"""A shared request budget per provider key and rate class ("queue", "retrieve").

Local bookkeeping (a sliding 60-second window) keeps us under the limit we know; the
server's own `x-ratelimit-*` headers correct it (another process may share the key, the
limit may differ from the default); a 429's Retry-After closes the budget until then.

When requests must wait, each free slot goes to the waiter with the highest priority *at
the moment the slot frees* -- a poll's priority is a function, the chance that its job has
finished since its last poll, which grows while it waits. No job starves: a request that
has waited `max_gap_s` goes before every priority (the longest-waiting first), so the gap
between two polls of one job is at most its schedule's gap plus that bound (plus the time
the budget needs for others that waited as long).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tui.engine.clock import Clock
from tui.providers.base import RateInfo

WINDOW_S = 60.0
MAX_GAP_S = 90.0  # no request waits longer than this while likelier ones go first

Priority = float | Callable[[], float]


@dataclass(eq=False)
class _Waiter:
    priority: Priority
    since: float  # when it started waiting
    seq: int
    future: asyncio.Future[None] = field(repr=False)

    def current(self) -> float:
        return self.priority() if callable(self.priority) else self.priority


class RequestBudget:
    def __init__(self, limit_per_min: int, clock: Clock, *,
                 on_change: Callable[[RequestBudget], None] | None = None,
                 max_gap_s: float = MAX_GAP_S) -> None:
        self.limit = max(1, limit_per_min)
        self.clock = clock
        self.on_change = on_change
        self.max_gap_s = max_gap_s
        self._sent: deque[float] = deque()  # times of requests in the current window
        self._server_remaining: int | None = None
        self._server_reset: float | None = None
        self.blocked_until: float = 0.0
        self._waiters: list[_Waiter] = []
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

    async def acquire(self, priority: Priority = 0.0) -> None:
        """Wait for a slot. Higher priority goes first when slots are short; `priority` may
        be a function, asked again each time a slot frees."""
        if not self._waiters and self._wait_needed() <= 0:
            self._take()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(_Waiter(priority, self.clock.now(), next(self._seq), fut))
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
            waiter = self._next_waiter()
            if waiter is None:
                break
            self._take()
            waiter.future.set_result(None)
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        """Stop handing out slots (the engine's stop): the pump and every waiter end."""
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, return_exceptions=True)
        for waiter in self._waiters:
            waiter.future.cancel()
        self._waiters.clear()

    def _next_waiter(self) -> _Waiter | None:
        """The waiter the free slot goes to: the longest-starved past the gap bound, else
        the highest priority now (the earliest to ask among equals)."""
        self._waiters = [w for w in self._waiters if not w.future.done()]
        if not self._waiters:
            return None
        now = self.clock.now()
        starved = [w for w in self._waiters if now - w.since >= self.max_gap_s]
        if starved:
            chosen = min(starved, key=lambda w: (w.since, w.seq))
        else:
            chosen = max(self._waiters, key=lambda w: (w.current(), -w.seq))
        self._waiters.remove(chosen)
        return chosen

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.future.done())

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)
