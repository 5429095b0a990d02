"""`?`: every key the dashboard answers to, as remapped by the config's [keys] table."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.termcaps import pictures

KeyRow = tuple[str, str, str]  # keys as shown, what they do, binding id (for [keys])

# Every figure the status line can show, in its order there.
STATUS_FIGURES: tuple[tuple[str, str], ...] = (
    ("⚑ pid 4242", "the engine: the process that follows the jobs and sends every request, "
                   "since when (`wan-tui engine status`). \"nobody follows the jobs\": jobs are "
                   "active and no engine runs; this window starts one within a second"),
    ("batch #31", "the batch shown: jobs recorded together (a batch file, or one submit of "
                  "many), named by its first job's #. The newest batch with jobs running, or "
                  "the one the table is filtered to (B lists them)"),
    ("12/40", "jobs of the batch done / all its jobs"),
    ("✘2", "its jobs failed, expired or unknown"),
    ("◐26", "its jobs not finished yet: waiting to be sent, queued, processing, downloading"),
    ("ETA 14m", "until its last job is done: each running job's estimate (the provider's, or "
                "learned from the model's finished jobs); jobs not sent yet start as running "
                "ones finish. – until an estimate is known"),
    ("30/h", "jobs of the batch done per hour since its first submit"),
    ("$3.20/$10.00", "money delivered (jobs done) / committed (every job of the batch that "
                     "is or may be charged, at its cost or its quote)"),
    ("all ◐ ✔ ✘ ◷ ⊘", "the whole history: active, done, failed (with unknown), expired, "
                      "cancelled"),
    ("today $21.36", "spent today: what was charged, plus unknown jobs at their quote "
                     "(maybe charged until Venice's ledger or `wan-tui resolve` settles them)"),
    ("venice bal $980.94", "what the key spends from, as the provider reports it (Venice: USD "
                           "or DIEM), read at start and after spending; a key that cannot "
                           "spend halts the provider"),
    ("venice $980.94", "the balance its answers carry, for a provider without such a report"),
    ("q31/40", "submits to this provider in the last minute / its per-minute limit "
               "(yellow: at the limit or jobs waiting for a slot)"),
    ("r32/120", "status polls and downloads asked of it in the last minute / its per-minute "
                "limit (yellow: at the limit; polls wait their turn)"),
    ("halted", "a provider refused with something no retry fixes (no credit, bad key): "
               "nothing more is sent to it"),
    ("no key", "providers without an API key (see `wan-tui config`)"),
)


def status_table() -> Table:
    table = Table(box=None, padding=(0, 2), show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for figure, meaning in STATUS_FIGURES:
        table.add_row(figure, meaning)
    return table


def key_table(rows: list[KeyRow]) -> Table:
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold grey70")
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("action")
    table.add_column(Text("id in [keys]"), style="grey50", no_wrap=True)
    for keys, action, binding_id in rows:
        table.add_row(keys, action, binding_id)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "close", id="help_close"),
        Binding("j,down", "scroll(1)", "scroll", show=False, id="help_down"),
        Binding("k,up", "scroll(-1)", "scroll", show=False, id="help_up"),
    ]

    def __init__(self, rows: list[KeyRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="modal-box"):
            yield Static(Text("wan-tui keys", style="bold"), id="help-title")
            yield Static(key_table(self.rows), id="help-keys")
            yield Static(Text.assemble(("the status line", "bold"), (
                "  (too narrow for all of it: figures leave whole, the providers without a "
                "key and who follows first, a halted provider and the batch's progress "
                "last)", "grey62")),
                id="help-status-title")
            yield Static(status_table(), id="help-status")
            yield Static(Text.assemble((pictures().describe(), "bold"), (
                "\n  WAN_TUI_IMAGES or images = \"auto|kitty|sixel|halfblock|off\" in "
                "config.toml chooses; `wan-tui doctor` says what the terminal answered",
                "grey62")), id="help-pictures")
            yield Static(Text(
                "Remap any key by its id under [keys] in config.toml (`wan-tui config` says "
                "where it is), e.g. quote = \"ctrl+e\".\n"
                "Over SSH, o and y copy the path with OSC 52 (tmux: set-clipboard on).\n"
                "esc, ? or q closes this.", style="grey62"), id="help-foot")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, lines: int) -> None:
        box = self.query_one("#help-box", VerticalScroll)
        box.scroll_relative(y=lines, animate=False)
