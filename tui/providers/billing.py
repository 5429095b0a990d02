"""What a provider says about money on its own: the balance a key spends from, and the ledger
of charges (Venice's `GET /billing/balance` and `GET /billing/usage-history`).

Adapters without such endpoints return no balance and raise Unsupported for the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Balance:
    """What the key can spend. `currency` is the one consumption draws from (DIEM or USD)."""

    can_consume: bool
    currency: str | None
    usd: float | None = None
    diem: float | None = None

    @property
    def amount(self) -> float | None:
        return self.diem if self.currency == "DIEM" else self.usd

    def label(self) -> str:
        """`$12.34` or `90.5 DIEM`: the balance the key pays from."""
        amount = self.amount
        if amount is None:
            return self.currency or "balance unknown"
        if self.currency == "DIEM":
            return f"{amount:,.2f} DIEM"
        return f"${amount:,.2f}"


@dataclass(frozen=True)
class Charge:
    """One ledger entry: when, for what (SKU), how much, and the request it was for."""

    at: float  # Unix time
    sku: str
    amount: float  # as the ledger writes it (Venice: negative for a charge)
    currency: str
    request_id: str | None  # Venice: the queue id of a video job

    def describe(self) -> str:
        rid = f" request {self.request_id}" if self.request_id else " no request id"
        return f"{self.sku} {abs(self.amount):g} {self.currency}{rid}"


@dataclass(frozen=True)
class Ledger:
    """Charges in [start, end), ascending, and the latest time the ledger is known to have
    recorded (its last entry at all, even past `end`): a window the ledger has not passed
    yet may still get entries."""

    charges: tuple[Charge, ...]
    recorded_until: float | None
