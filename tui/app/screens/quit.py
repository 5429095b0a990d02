"""Quitting while this window follows jobs: what becomes of them?"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

CHOICES = ("background", "stop", "stay")


class QuitScreen(ModalScreen[str]):
    """Dismisses with "background" (the default: enter), "stop" or "stay" (escape)."""

    BINDINGS = [
        Binding("b", "choose('background')", "background", id="quit_background"),
        Binding("s", "choose('stop')", "stop following", id="quit_stop"),
        Binding("escape", "choose('stay')", "stay", id="quit_stay"),
        Binding("left,right,tab", "app.focus_next", "switch", show=False, id="quit_switch"),
    ]

    def __init__(self, active: int) -> None:
        super().__init__()
        self.active = active

    def compose(self) -> ComposeResult:
        jobs = f"{self.active} job{'s' if self.active != 1 else ''}"
        with Vertical(id="confirm-box", classes="modal-box"):
            yield Static(Text(f"Quit with {jobs} active?", style="bold"), id="confirm-title")
            yield Static(
                "Background: a wan-tui engine without a terminal keeps following them to "
                "disk and exits when they are done (`wan-tui engine status`).\n"
                "Stop following: they wait, at the provider, until wan-tui runs again "
                "(a submit on the wire is waited for so its id is saved).",
                id="confirm-message")
            with Horizontal(id="confirm-buttons"):
                yield Button("Background (b)", id="background", variant="primary")
                yield Button("Stop following (s)", id="stop")
                yield Button("Stay (esc)", id="stay")

    def on_mount(self) -> None:
        self.query_one("#background", Button).focus()  # the default keeps the jobs safe

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id or "stay")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
