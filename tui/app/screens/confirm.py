"""A yes/no question before anything that spends money or loses a video."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True only on an explicit yes; escape, `n` and a click outside say no."""

    BINDINGS = [
        Binding("y", "answer(True)", "yes", id="confirm_yes"),
        Binding("n,escape", "answer(False)", "no", id="confirm_no"),
        Binding("left,right,tab", "app.focus_next", "switch", show=False, id="confirm_switch"),
    ]

    def __init__(self, title: str, message: str | Text, yes: str = "Yes",
                 *, danger: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.yes_label = yes
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="modal-box"):
            yield Static(Text(self.title_text, style="bold"), id="confirm-title")
            yield Static(self.message, id="confirm-message")
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.yes_label} (y)", id="yes",
                             variant="error" if self.danger else "primary")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        # The safe answer has the focus: a stray enter never spends money.
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def on_click(self, event) -> None:
        if event.widget is self:  # a click on the dimmed background
            self.dismiss(False)
