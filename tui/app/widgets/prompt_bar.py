"""A one-line question above the footer: `f` finds a job by prompt words (then n/N move
between matches), `#` goes to a job by its number."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

PLACEHOLDERS = {
    "find": "find: words in the prompt (enter: go to the next match; then n / N)",
    "jump": "go to job #",
}


class PromptBar(Input):
    BINDINGS = [Binding("escape", "cancel", "cancel", id="prompt_cancel")]

    class Answered(Message):
        def __init__(self, mode: str, value: str | None) -> None:
            super().__init__()
            self.mode = mode
            self.value = value  # None: cancelled

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mode = "find"

    def ask(self, mode: str, value: str = "") -> None:
        self.mode = mode
        self.placeholder = PLACEHOLDERS[mode]
        self.border_title = "find" if mode == "find" else "go to"
        self.value = value
        self.display = True
        self.cursor_position = len(value)
        self.focus()

    def action_cancel(self) -> None:
        self.post_message(self.Answered(self.mode, None))

    async def action_submit(self) -> None:
        self.post_message(self.Answered(self.mode, self.value.strip()))
