"""The screen the dashboard's widgets live on."""

from __future__ import annotations

from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget


class DashboardScreen(Screen):
    """Textual's screen, minus a whole-screen repaint at every change of focus.

    `Screen.focused` is a repainting reactive: moving the focus (closing the filter line,
    opening the detail pane) redraws every cell of the screen and sends the whole frame
    through the diff, about a third of what filter ⏎ costs with 1 000 jobs running. What
    focus changes on screen is redrawn without it: the widgets gaining and losing focus
    (their `:focus` styles, `Widget.focus` refreshes the new one) and the footer's keys
    (the `_watch_focused` watcher below is Textual's own and still runs).
    """

    focused: Reactive[Widget | None] = Reactive(None, repaint=False)
