"""Time as the engine sees it: injectable so poll schedules can be tested without sleeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Clock:
    """Wall-clock time and real sleeps."""

    # Wall seconds per second of this clock: 1 here; a benchmark's scaled clock runs faster
    # (tui.bench.engine.ScaledClock), so a latency of the wall's is more of its seconds.
    scale: float = 1.0

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early when `event` is set. True if it was set."""
        if event.is_set():
            return True
        try:
            await asyncio.wait_for(event.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            return False
        return True


class ServerClock(Clock):
    """Wall time read on a team's database server (`offset()`: how far its clock is ahead
    of this machine's, measured by the store): every engine of the team then agrees on
    when a lease or a rate window ends, and on a job's age."""

    def __init__(self, offset: Callable[[], float]) -> None:
        self._offset = offset

    def now(self) -> float:
        return time.time() + self._offset()


class ManualClock(Clock):
    """A clock that only moves when told to, or when something sleeps on it.

    Sleeping advances time instantly, so a schedule that would take hours runs in
    microseconds and tests can count polls exactly.
    """

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        await self.sleep(seconds)
        return event.is_set()
