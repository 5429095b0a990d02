"""The balance each provider key spends from, read from the provider itself.

Read when the engine starts (before any submit, so a key that cannot spend sends nothing)
and again a moment after spending (one read for a run of submits, not one per submit). When
the provider says the key cannot spend (`canConsume` false on Venice), the provider is halted
with one line saying why: pending jobs stay pending and nothing is sent until the next
start reads a balance that can spend.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from tui.engine.events import BalanceChanged
from tui.providers.base import ProviderError
from tui.providers.billing import Balance

if TYPE_CHECKING:
    from tui.engine.parts import EngineParts

log = logging.getLogger("wan_tui.engine")

# After a submit, wait this long before reading: a batch's submits then share one read.
AFTER_SPEND_S = 2.0


def cannot_spend(label: str, balance: Balance) -> str:
    return (f"{label} says this key cannot spend now (balance {balance.label()}); top up, "
            "then start wan-tui again")


class BalanceWatch:
    def __init__(self, engine: EngineParts) -> None:
        self.engine = engine
        self.balances: dict[str, Balance] = {}
        self._due: set[str] = set()  # a read after spending is scheduled
        self._first: dict[str, asyncio.Future[Balance | None]] = {}

    async def read_all(self) -> None:
        names = [n for n, p in self.engine.providers.items() if p.configured]
        await asyncio.gather(*(self.before_spending(name) for name in names))

    async def before_spending(self, name: str) -> None:
        """The first read of this engine's life, shared: a submit waits for it, so a key
        that cannot spend sends nothing at all."""
        first = self._first.get(name)
        if first is None:
            first = self._first[name] = asyncio.ensure_future(self.read(name))
        await asyncio.shield(first)

    async def read(self, name: str) -> Balance | None:
        provider = self.engine.providers[name]
        try:
            balance = await provider.balance()
        except ProviderError as err:  # no answer is no news: submits go on as before
            log.info("%s balance not read: %s", name, err)
            return None
        except Exception:  # nor is a bug here: submits must not wait on it
            log.exception("%s balance not read", name)
            return None
        if balance is None:
            return None
        self.balances[name] = balance
        self.engine.emit(BalanceChanged(name, balance))
        if not balance.can_consume:
            self.engine.halt(name, cannot_spend(provider.label or name, balance))
        return balance

    def spent(self, name: str) -> None:
        """A paid call went through: read the balance again shortly."""
        if name in self._due or not self.engine.running:
            return
        self._due.add(name)

        async def later() -> None:
            try:
                await self.engine.clock.sleep(AFTER_SPEND_S)
                await self.read(name)
            finally:
                self._due.discard(name)

        self.engine.spawn(later(), f"service-balance-{name}")
