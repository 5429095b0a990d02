"""The status line: counts, today's spend, balances and request budgets, what is missing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.text import Text
from textual.widgets import Static

from tui import format as fmt
from tui.app.batch_status import BatchSummary
from tui.app.facade import BudgetStatus, Facade, Follower
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
    balances: dict[str, str] = field(default_factory=dict)  # the provider's own report


async def read_status(facade: Facade, batch: int | None, now: float) -> StatusData:
    """Every figure the status line shows, read now (`batch`: the one the table is
    filtered to, else the newest running)."""
    counts = await facade.counts()
    spend = await facade.spend_today()
    summary = await facade.batch_summary(batch, now)
    unconfigured = [p.name for p in facade.providers() if not p.configured]
    return StatusData(counts, spend, facade.budgets(), unconfigured, facade.halted(),
                      await facade.follower(), summary, balances=facade.balances())


@dataclass(frozen=True)
class Segment:
    """One figure of the status line, kept or left out whole. `priority`: 0 stays longest,
    a higher number gives way first. Segments of one `group` sit together, `gap` apart;
    groups are parted by `│`. `lead` is shown before the first of its group that stays
    ("all" before the whole history's counts)."""

    text: Text
    priority: int
    group: str
    lead: Text | None = None
    gap: str = "  "


# Priorities: what someone glancing at the line needs most stays longest.
MUST = 0  # nothing more is sent to a provider; nobody follows the jobs
BATCH = 1  # the batch's progress and its failures
SPEND = 2  # today's spend; the batch's ETA
TROUBLE = 3  # failures in the whole history; a request budget at its limit
MONEY = 4  # the batch's money delivered / committed
PROVIDER = 5  # each provider's balance and budgets; done in the whole history
DETAIL = 6  # throughput, expired and cancelled counts
WHO = 7  # which process follows the jobs (when one does)
HINT = 8  # providers without a key


def _provider_segments(budgets: list[BudgetStatus], reported: dict[str, str]
                       ) -> list[Segment]:
    """Each provider once: `venice bal $12.34 q6/40 r3/120`. `bal` is what the key spends
    from as the provider reports it; without such a report, the balance its answers carry
    (`venice $12.34 q6/40`)."""
    by_provider: dict[str, list[BudgetStatus]] = {p: [] for p in reported}
    for b in budgets:
        by_provider.setdefault(b.provider, []).append(b)
    out = []
    for provider, items in by_provider.items():
        text = Text()
        text.append(f"{provider} ", style="bold")
        balance = next((b.balance_usd for b in items if b.balance_usd is not None), None)
        if provider in reported:
            text.append("bal ", style="bold")
            text.append(f"{reported[provider]} ", style="green")
        elif balance is not None:
            text.append(f"{fmt.money(balance)} ", style="green")
        busy = False
        for b in sorted(items, key=lambda b: b.rate_class):
            at_limit = b.used >= b.limit or b.waiting
            busy = busy or bool(at_limit)
            text.append(f"{b.rate_class[0]}{b.used}/{b.limit} ",
                        style="yellow" if at_limit else "grey62")
        text.rstrip()
        out.append(Segment(text, TROUBLE if busy else PROVIDER, "money"))
    return out


def batch_segments(batch: BatchSummary) -> list[Segment]:
    """`batch #31 12/40 ✘2 ◐26 ETA 14m 30/h $3.20/$10.00`: the batch first."""
    def seg(text: str, style: str, priority: int) -> Segment:
        return Segment(Text(text, style=style), priority, "batch", gap=" ")

    head = Text()
    head.append(f"batch #{batch.batch_id} ", style="bold")
    head.append(f"{fmt.count(batch.done)}/{fmt.count(batch.total)}", style="green")
    out = [Segment(head, BATCH, "batch")]
    if batch.failed:
        out.append(seg(f"{fmt.GLYPHS[JobState.FAILED]}{fmt.count(batch.failed)}", "red", BATCH))
    if batch.active:
        out.append(seg(f"{fmt.GLYPHS[JobState.PROCESSING]}{fmt.count(batch.active)}", "yellow",
                       SPEND))
        eta = fmt.duration(batch.eta_s) if batch.eta_s is not None else "–"
        out.append(seg(f"ETA {eta}", "bold", SPEND))
    if batch.per_hour:
        out.append(seg(f"{batch.per_hour:.0f}/h", "grey62", DETAIL))
    out.append(seg(f"{fmt.money(batch.stats.delivered_usd)}/"
                   f"{fmt.money(batch.stats.committed_usd)}", "bold", MONEY))
    return out


def _follower_segment(who: Follower, active: int) -> Segment:
    """Who follows the jobs: the engine process since when, or nobody (the window starts
    one within a second when there is work)."""
    if who.pid is None:
        if not active:  # the engine left when idle: nothing is missing
            return Segment(Text("⚑ no engine (nothing active)", style="grey62"), WHO, "who")
        return Segment(Text("⚑ nobody follows the jobs", style="bold yellow"), MUST, "who")
    when = time.strftime("%H:%M", time.localtime(who.since)) if who.since else "?"
    if who.here:
        return Segment(Text(f"⚑ here since {when}", style="grey62"), WHO, "who")
    role = "in the background" if who.role == "background" else f"({who.role or 'engine'})"
    return Segment(Text(f"⚑ pid {who.pid} {role} since {when}", style="cyan"), WHO, "who")


def status_segments(data: StatusData) -> list[Segment]:
    """Every figure the status line could show, in its order there."""
    counts = data.counts
    active = sum(counts.get(s, 0) for s in ACTIVE_STATES)
    failed = sum(counts.get(s, 0) for s in (JobState.FAILED, JobState.UNKNOWN))
    out: list[Segment] = []
    if data.follower is not None:
        out.append(_follower_segment(data.follower, active))
    lead = None
    if data.batch is not None:
        out += batch_segments(data.batch)
        lead = Text("all ", style="grey62")  # the counts after the batch's are the history's

    def count(text: str, style: str, priority: int) -> Segment:
        return Segment(Text(text, style=style), priority, "all", lead)

    # Beside a batch, its own counts say what is running; the history's failures still matter.
    beside = data.batch is not None
    out.append(count(f"{fmt.GLYPHS[JobState.PROCESSING]} {fmt.count(active)} active",
                     "yellow" if active else "grey62", DETAIL if beside else TROUBLE))
    out.append(count(f"{fmt.GLYPHS[JobState.DONE]} "
                     f"{fmt.count(counts.get(JobState.DONE, 0))} done", "green",
                     DETAIL if beside else PROVIDER))
    out.append(count(f"{fmt.GLYPHS[JobState.FAILED]} {fmt.count(failed)} failed",
                     "red" if failed else "grey62", TROUBLE if failed else DETAIL))
    for state, style in ((JobState.EXPIRED, "dark_orange"), (JobState.CANCELLED, "grey50")):
        if counts.get(state, 0):
            out.append(count(f"{fmt.GLYPHS[state]} {fmt.count(counts[state])} {state}", style,
                             DETAIL))
    spend = Text("today ", style="grey62")
    spend.append(fmt.money(data.spend_today), style="bold")
    out.append(Segment(spend, SPEND, "money"))
    out += _provider_segments(data.budgets, data.balances)
    for provider, reason in data.halted.items():
        out.append(Segment(Text(f"{provider} halted: {fmt.excerpt(reason, 60)}",
                                style="bold red"), MUST, "money"))
    if data.unconfigured:
        out.append(Segment(Text(f"no key: {', '.join(data.unconfigured)}", style="grey50"),
                           HINT, "hint"))
    return out


SEPARATOR = Text("  │ ", style="grey62")


def compose(segments: list[Segment]) -> Text:
    """The line made of these segments, in their order: groups parted by `│`."""
    text = Text()
    group: str | None = None
    for segment in segments:
        if segment.group != group:
            if group is not None:
                text.append_text(SEPARATOR)
            if segment.lead is not None:
                text.append_text(segment.lead)
            group = segment.group
        else:
            text.append(segment.gap)
        text.append_text(segment.text)
    return text


def fit(segments: list[Segment], width: int) -> Text:
    """As many segments as `width` cells hold, the most important first: each in turn (by
    priority, then place) stays if the line with it still fits, else it leaves whole. A
    segment that leaves makes room for a smaller, less important one after it."""
    kept: set[int] = set()
    order = sorted(range(len(segments)), key=lambda i: (segments[i].priority, i))
    for i in order:
        trial = kept | {i}
        if compose([segments[j] for j in sorted(trial)]).cell_len <= width:
            kept = trial
    return compose([segments[j] for j in sorted(kept)])


def render_status(data: StatusData, width: int | None = None) -> Text:
    segments = status_segments(data)
    return compose(segments) if width is None else fit(segments, width)


class StatusLine(Static):
    """The status line, refitted to its width when the figures or the width change."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.data = StatusData()
        self._segments: list[Segment] = []
        self._shown: Text | None = None

    def show(self, data: StatusData) -> None:
        self.data = data
        self._segments = status_segments(data)
        self._refit()

    def on_resize(self) -> None:
        self._refit()

    def _refit(self) -> None:
        width = self.content_size.width
        if not width:  # not laid out yet: on_resize fits it
            return
        text = fit(self._segments, width)
        if text != self._shown:  # the same words: no repaint, no bytes
            self._shown = text
            self.update(text)
