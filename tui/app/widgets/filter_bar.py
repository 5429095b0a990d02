"""`/`: an inline filter line above the footer, applied as you type (k9s style)."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

PLACEHOLDER = "filter: words in the prompt, state:failed, model:ID, provider:venice (esc: undo)"


class FilterBar(Input):
    BINDINGS = [
        Binding("escape", "cancel", "undo filter", id="filter_cancel"),
    ]

    class Closed(Message):
        """The bar closed: keep what was typed (`restore` None) or go back to `restore`."""

        def __init__(self, restore: str | None) -> None:
            super().__init__()
            self.restore = restore

    def __init__(self, **kwargs) -> None:
        super().__init__(placeholder=PLACEHOLDER, **kwargs)
        self.before = ""

    def open(self, query: str) -> None:
        self.before = query
        self.value = query
        self.display = True
        self.cursor_position = len(query)
        self.focus()

    def close(self, restore: str | None) -> None:
        # The app hides the bar: with the filtered rows, in one frame, when it reads them.
        self.post_message(self.Closed(restore))

    def action_cancel(self) -> None:
        self.close(self.before)

    async def action_submit(self) -> None:
        self.close(None)
