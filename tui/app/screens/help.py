"""`?`: every key the dashboard answers to, as remapped by the config's [keys] table."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KeyRow = tuple[str, str, str]  # keys as shown, what they do, binding id (for [keys])


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
            yield Static(Text(
                "Remap any key by its id under [keys] in config.toml (`wan-tui config` says "
                "where it is), e.g. quote = \"ctrl+q\".\n"
                "Over SSH, o and y copy the path with OSC 52 (tmux: set-clipboard on).\n"
                "esc, ? or q closes this.", style="grey62"), id="help-foot")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, lines: int) -> None:
        box = self.query_one("#help-box", VerticalScroll)
        box.scroll_relative(y=lines, animate=False)
