"""The status line: counts, today's spend, balances and request budgets, what is missing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.text import Text
from textual.widgets import Static

from tui import format as fmt
from tui.app.batch_status import BatchSummary
from tui.app.facade import BudgetStatus, Follower
from tui.jobs import ACTIVE_STATES, JobState


@dataclass
class StatusData:
    counts: dict[JobState, int] = field(default_factory=dict)
    spend_today: float = 0.0
    budgets: list[BudgetStatus] = field(default_factory=list)
    unconfigured: list[str] = field(default_factory=list)
    halted: dict[str, str] = field(default_factory=dict)
    follower: Follower | None = None  # who follows the jobs
    batch: BatchSummary | None = None


def _budget_text(budgets: list[BudgetStatus]) -> Text:
    text = Text()
    by_provider: dict[str, list[BudgetStatus]] = {}
    for b in budgets:
        by_provider.setdefault(b.provider, []).append(b)
    for provider, items in by_provider.items():
        text.append(f"  {provider} ", style="bold")
        balance = next((b.balance_usd for b in items if b.balance_usd is not None), None)
        if balance is not None:
            text.append(f"{fmt.money(balance)} ", style="green")
        for b in sorted(items, key=lambda b: b.rate_class):
            busy = b.used >= b.limit or b.waiting
            text.append(f"{b.rate_class[0]}{b.used}/{b.limit} ",
                        style="yellow" if busy else "grey62")
    return text


def batch_text(batch: BatchSummary) -> Text:
    """`batch #31 12/40 ✘2 ◐26 ETA 14m 30/h $3.20/$10.00`: the batch first, the most
    read figures leftmost (a narrow terminal cuts the line from the right)."""
    text = Text()
    text.append(f"batch #{batch.batch_id} ", style="bold")
    text.append(f"{fmt.count(batch.done)}/{fmt.count(batch.total)} ", style="green")
    if batch.failed:
        text.append(f"{fmt.GLYPHS[JobState.FAILED]}{fmt.count(batch.failed)} ", style="red")
    if batch.active:
        text.append(f"{fmt.GLYPHS[JobState.PROCESSING]}{fmt.count(batch.active)} ",
                    style="yellow")
        eta = fmt.duration(batch.eta_s) if batch.eta_s is not None else "–"
        text.append(f"ETA {eta} ", style="bold")
    if batch.per_hour:
        text.append(f"{batch.per_hour:.0f}/h ", style="grey62")
    text.append(f"{fmt.money(batch.stats.delivered_usd)}/{fmt.money(batch.stats.committed_usd)}",
                style="bold")
    text.append("  │ ", style="grey62")
    return text


def _follower_text(who: Follower, active: int) -> Text:
    """Who follows the jobs: the engine process since when, or nobody (the window starts
    one within a second when there is work)."""
    if who.pid is None:
        if not active:  # the engine left when idle: nothing is missing
            return Text("⚑ no engine (nothing active)  ", style="grey62")
        return Text("⚑ nobody follows the jobs  ", style="bold yellow")
    when = time.strftime("%H:%M", time.localtime(who.since)) if who.since else "?"
    if who.here:
        return Text(f"⚑ here since {when}  ", style="grey62")
    role = "in the background" if who.role == "background" else f"({who.role or 'engine'})"
    return Text(f"⚑ pid {who.pid} {role} since {when}  ", style="cyan")


def render_status(data: StatusData) -> Text:
    counts = data.counts
    active = sum(counts.get(s, 0) for s in ACTIVE_STATES)
    failed = sum(counts.get(s, 0) for s in (JobState.FAILED, JobState.UNKNOWN))
    text = Text()
    if data.follower is not None:
        text.append_text(_follower_text(data.follower, active))
    if data.batch is not None:
        text.append_text(batch_text(data.batch))
        text.append("all ", style="grey62")
    text.append(f"{fmt.GLYPHS[JobState.PROCESSING]} {fmt.count(active)} active  ",
                style="yellow" if active else "grey62")
    text.append(f"{fmt.GLYPHS[JobState.DONE]} {fmt.count(counts.get(JobState.DONE, 0))} done  ",
                style="green")
    text.append(f"{fmt.GLYPHS[JobState.FAILED]} {fmt.count(failed)} failed  ",
                style="red" if failed else "grey62")
    for state, style in ((JobState.EXPIRED, "dark_orange"), (JobState.CANCELLED, "grey50")):
        if counts.get(state, 0):
            text.append(f"{fmt.GLYPHS[state]} {fmt.count(counts[state])} {state}  ", style=style)
    text.append("│ today ", style="grey62")
    text.append(fmt.money(data.spend_today), style="bold")
    text.append_text(_budget_text(data.budgets))
    for provider, reason in data.halted.items():
        text.append(f"  {provider} halted: {fmt.excerpt(reason, 60)}", style="bold red")
    if data.unconfigured:
        text.append(f"  │ no key: {', '.join(data.unconfigured)}", style="grey50")
    return text


class StatusLine(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.data = StatusData()
        self._shown: Text | None = None

    def show(self, data: StatusData) -> None:
        self.data = data
        text = render_status(data)
        if text != self._shown:  # the same words: no repaint, no bytes
            self._shown = text
            self.update(text)
