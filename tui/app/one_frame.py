"""A change drawn in one frame: nothing is drawn until its rows are in.

A frame of the old rows first (restyled for focus, retitled) would only hold the event loop
up while the new rows are read: with 1 000 active jobs that made a filter's ⏎ 55-70 ms
instead of 20-30, and esc 10-15 ms slower. So frames are held (Textual's batch_update) and
the footer keeps its keys until the rows are in; then one frame shows them, with whatever
else the change brings (the filter line closing, the table focused), and the footer's new
keys after. A kept window is rows in at once (JobTable.reload shows it before its read), so
frames resume then, not after the read.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from textual.app import App

from tui.app.widgets.footer import LazyFooter

HOLD_AT_MOST_S = 0.5  # a read that never ran must not freeze the screen


def in_one_frame(app: App[Any], start: Callable[[Callable[[], None]], bool],
                 with_rows: Callable[[], None] | None = None) -> None:
    """Hold frames, then `start(rows_in)`: it begins the read and calls `rows_in` when the
    new rows are in (and again when the read ends, in case they never came), returning
    False when there is nothing to read. `with_rows` runs in the frame that shows them."""
    footer = app.query_one(LazyFooter)
    footer.hold()
    frames = ExitStack()
    frames.enter_context(app.batch_update())
    app.set_timer(HOLD_AT_MOST_S, frames.close)
    released = False

    def rows_in() -> None:
        nonlocal released
        if released:  # with the rows, and again at the read's end in case they never came
            return
        released = True
        if with_rows is not None:
            with_rows()
        frames.close()
        footer.release()

    if not start(rows_in):
        rows_in()
