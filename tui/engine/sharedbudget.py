"""One request budget per provider key, shared by every engine of a team's database.

A provider counts its rate limit per key, and on a team's PostgreSQL history several
engines (one per machine) send on one key, so a window kept in one engine's memory lets
them overrun it together. Here every call an engine sends is a row in the database
(`rate_spend`: key, class, time, engine) taken in one transaction that first counts the
key's rows in the last minute under a lock on the key, so two engines never both take the
last slot; a 429's Retry-After, or the server's own "0 remaining until its reset", goes to
`rate_blocks`, and every engine on the key waits it out.

Everything else is RequestBudget's: the local priority pump (one task hands each free slot
to the likeliest waiter), the server's headers, the gap bound. When the database cannot
answer, a call falls back to this engine's own window (logged once per outage), so a
database hiccup slows nothing down that the provider would not.

One person's SQLite history keeps the local RequestBudget: nobody else sends on the key
through it (`budget_for` chooses).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from tui.engine.budget import MAX_GAP_S, WINDOW_S, Priority, RequestBudget, _Waiter
from tui.engine.clock import Clock
from tui.providers.base import Provider, RateInfo
from tui.store import Store

log = logging.getLogger("wan_tui.engine.budget")

# The window the database counts is this much longer than the provider's (wall seconds):
# a request is counted when it is granted, but the provider counts it when it arrives, and
# between the two lie a varying delay (a submit first records its claim) and the wire.
# Without it the call after a slow one could land inside the provider's window of the first.
SLACK_S = 0.5
# How stale the key's shared use may be before `used` asks the database again (seconds of
# the engine's clock): the status shows other engines' use too, not only ours.
REFRESH_S = 2.0


def key_id(provider_name: str, provider: Provider) -> str:
    """What names a key in the database: the provider and a short hash of its key (never
    the key: secrets never reach the database). Two engines on one key share a budget;
    two keys do not."""
    return f"{provider_name}:{provider.key_fingerprint}"


def budget_for(store: Store, provider_name: str, provider: Provider, rate_class: str,
               limit: int, clock: Clock,
               on_change: Callable[[RequestBudget], None] | None = None) -> RequestBudget:
    """The budget an engine keeps for one key and class: shared through a team's database
    (`store.machine` is set there), this engine's own otherwise."""
    if store.machine is None:
        return RequestBudget(limit, clock, on_change=on_change)
    return SharedRequestBudget(limit, clock, store=store, key=key_id(provider_name, provider),
                               rate_class=rate_class, on_change=on_change)


class SharedRequestBudget(RequestBudget):
    def __init__(self, limit_per_min: int, clock: Clock, *, store: Store, key: str,
                 rate_class: str, on_change: Callable[[RequestBudget], None] | None = None,
                 max_gap_s: float = MAX_GAP_S) -> None:
        super().__init__(limit_per_min, clock, on_change=on_change, max_gap_s=max_gap_s)
        self.store = store
        self.key_id = key
        self.rate_class = rate_class
        self.engine_name = store.machine
        # In the engine clock's seconds: a scaled clock (benchmarks) stretches the latency.
        self.window_s = WINDOW_S + SLACK_S / clock.scale
        self._shared_used: int | None = None  # the key's use, as the database last said
        self._shared_at = float("-inf")  # when (engine clock)
        self._db_trouble: str | None = None  # the outage being waited out, said once
        self._chores: set[asyncio.Task[None]] = set()  # block writes, use refreshes
        self._heard_limit: int | None = None  # the last limit the provider's headers said
        self._closed = False
        self.fallbacks = 0  # calls granted by the local window while the database could not

    # ------------------------------------------------------------ what the server said

    def observe(self, info: RateInfo) -> None:
        super().observe(info)  # a Retry-After comes back here through block_for
        if info.limit and info.limit != self._heard_limit:
            # Every engine counts against it from its next call, even one that has had no
            # answer yet (and would count against the provider's default).
            self._heard_limit = info.limit
            self._chore(self._publish_limit(info.limit))
        if info.remaining is not None and info.remaining <= 0 and info.reset_at:
            now = self.clock.now()
            # No reset beyond one window: the provider's window cannot hold a call longer.
            until = min(info.reset_at, now + WINDOW_S)
            if until > now:
                self._chore(self._publish_block(until))

    def block_for(self, seconds: float) -> None:
        super().block_for(seconds)
        self._chore(self._publish_block(self.blocked_until))

    async def _publish_limit(self, limit: int) -> None:
        try:
            await self.store.set_rate_limit(self.key_id, self.rate_class, limit)
        except Exception as exc:
            self._trouble(exc)

    async def _publish_block(self, until: float) -> None:
        try:
            await self.store.block_rate(self.key_id, self.rate_class, until)
        except Exception as exc:  # the block still holds here; the others learn by 429
            self._trouble(exc)

    # ------------------------------------------------------------ spending

    @property
    def used(self) -> int:
        """The key's use in the window, every engine's: what the database last said (asked
        again in the background when it is older than REFRESH_S), else this engine's own."""
        own = super().used
        if self._shared_used is None:
            self._refresh_soon()
            return own
        if self.clock.now() - self._shared_at > REFRESH_S:
            self._refresh_soon()
        return max(own, self._shared_used)

    def _refresh_soon(self) -> None:
        if not any(t.get_name() == "refresh" for t in self._chores):
            self._chore(self._refresh(), "refresh")

    async def _refresh(self) -> None:
        now = self.clock.now()
        try:
            state = await self.store.rate_state(self.key_id, self.rate_class, now,
                                                window_s=WINDOW_S)
        except Exception as exc:
            self._trouble(exc)
            return
        before = self._shared_used
        self._shared_used, self._shared_at = state.used, now
        self.blocked_until = max(self.blocked_until, state.blocked_until)
        if state.limit:
            self.limit = state.limit
        if state.used != before:
            self._changed()

    async def _ask(self) -> float:
        """0.0 when a slot was taken (recorded in the database), else seconds to wait."""
        wait = self._wait_needed()  # this engine's own block, window and server's word
        if wait > 0:
            return wait
        now = self.clock.now()
        try:
            slot = await self.store.take_rate_slot(self.key_id, self.rate_class, self.limit,
                                                   now, self.engine_name,
                                                   window_s=self.window_s)
        except Exception as exc:
            # The database cannot say: this call goes by the local window (what one engine
            # would do alone) rather than stopping the engine.
            self._trouble(exc)
            wait = self._wait_needed()
            if wait <= 0:
                self.fallbacks += 1
                self._take()
            return wait
        if self._db_trouble is not None:
            log.info("shared rate budget of %s %s answers again", self.key_id, self.rate_class)
            self._db_trouble = None
        self._shared_used, self._shared_at = slot.used, now
        self.blocked_until = max(self.blocked_until, slot.blocked_until)
        self.limit = slot.limit  # the provider's word, whichever engine heard it
        if slot.wait_s > 0:
            return slot.wait_s
        self._take()
        return 0.0

    async def acquire(self, priority: Priority = 0.0) -> None:
        """Wait for a slot of the key's shared budget (higher priority first among this
        engine's waiters, as RequestBudget)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(_Waiter(priority, self.clock.now(), next(self._seq), fut))
        self._ensure_pump()
        # Cancelled after a grant: the slot stays counted (the row is committed), which
        # errs on the safe side.
        await fut

    async def _pump(self) -> None:
        # Ask only while someone waits, so a slot is rarely taken for nobody.
        while self.waiting:
            wait = await self._ask()
            if wait > 0:
                await self.clock.sleep(min(wait, 1.0))
                continue
            waiter = self._next_waiter()
            if waiter is None:
                break  # the waiter left while we asked: its slot stays counted
            waiter.future.set_result(None)
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        self._closed = True  # a look at `used` after the stop asks nothing of the database
        await super().aclose()
        for task in list(self._chores):
            task.cancel()
        await asyncio.gather(*self._chores, return_exceptions=True)

    # ------------------------------------------------------------ housekeeping

    def _chore(self, work: Coroutine[Any, Any, None], name: str = "block") -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): nothing to run it on
            work.close()
            return
        if self._closed:
            work.close()
            return
        task = loop.create_task(work, name=name)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    def _trouble(self, exc: BaseException) -> None:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if self._db_trouble is None:
            log.warning("shared rate budget of %s %s: the history database did not answer "
                        "(%s); counting this engine's own requests until it does",
                        self.key_id, self.rate_class, text)
        self._db_trouble = text
