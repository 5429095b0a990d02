"""The batches: every group of jobs recorded together, newest first, with how far each got.
Enter shows only that batch's jobs in the table (the filter `batch:N`); `a` shows all."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui import format as fmt
from tui.app.batch_status import BatchSummary
from tui.jobs import JobState

ALL = "all"  # the option that clears the batch filter


def batch_line(batch: BatchSummary, now: float) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"#{batch.batch_id:<6}", style="bold")
    text.append(f"{fmt.count(batch.done):>5}/{fmt.count(batch.total):<6}", style="green")
    text.append(f"{fmt.GLYPHS[JobState.FAILED]}{batch.failed:<4} ",
                style="red" if batch.failed else "grey50")
    if batch.active:
        eta = fmt.duration(batch.eta_s) if batch.eta_s is not None else "–"
        text.append(f"{fmt.GLYPHS[JobState.PROCESSING]}{batch.active:<4} ETA {eta:<9} ",
                    style="yellow")
    else:
        text.append(f"{'ended ' + fmt.ago(batch.stats.last_finished_at, now):<19} "
                    if batch.stats.last_finished_at else f"{'':<19} ", style="grey62")
    text.append(f"{fmt.money(batch.stats.delivered_usd):>9} of "
                f"{fmt.money(batch.stats.committed_usd):<9} ")
    text.append(fmt.excerpt(batch.stats.prompt, 34), style="grey62")
    return text


class BatchesScreen(ModalScreen[str | None]):
    """Dismisses with the chosen batch's filter query, ALL, or None (nothing changes)."""

    BINDINGS = [
        Binding("escape,q", "close", "close", id="batches_close"),
        Binding("a", "show_all", "all jobs", id="batches_all"),
    ]

    def __init__(self, batches: list[BatchSummary], now: float, current: int | None) -> None:
        super().__init__()
        self.batches = batches
        self.now = now
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="batches-box", classes="modal-box"):
            yield Static(Text("Batches: jobs recorded together (a batch file, or one submit "
                              "of many), named by their first job's #", style="bold"),
                         id="batches-title")
            options = [Option(Text("all jobs (no batch filter)", style="italic"), id=ALL)]
            options += [Option(batch_line(b, self.now), id=str(b.batch_id))
                        for b in self.batches]
            yield OptionList(*options, id="batch-list")
            yield Static(Text("enter shows only that batch's jobs · a all jobs · esc closes",
                              style="grey62"))

    def on_mount(self) -> None:
        listing = self.query_one(OptionList)
        ids = [str(b.batch_id) for b in self.batches]
        listing.highlighted = 1 + ids.index(str(self.current)) if str(self.current) in ids \
            else (1 if ids else 0)
        listing.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        chosen = event.option.id
        self.dismiss(ALL if chosen == ALL else f"batch:{chosen}")

    def action_show_all(self) -> None:
        self.dismiss(ALL)

    def action_close(self) -> None:
        self.dismiss(None)
