"""Type-ahead: keys typed in one burst with the key that opens the filter, find or go-to line
(or closes it) go where the user meant them, in order.

Textual reads a key's bindings (enter, esc, backspace) against the focused widget when the
key comes back to the app, and a line's focus moves through the app's queue (Widget.focus is
call_later), behind keys already read. Sent on at once, the keys after `/` would run the
table's commands, and those after the line's ⏎ or esc would be typed into the closed line.
So the keys behind such a key are held here until the focus has moved, then sent on through
Textual's own path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from textual import events
from textual.app import App
from textual.timer import Timer
from textual.widget import Widget

from tui.app.screens.dashboard import DashboardScreen
from tui.app.widgets.filter_bar import FilterBar
from tui.app.widgets.prompt_bar import PromptBar

LINE_ACTIONS = frozenset({"filter", "find", "jump"})  # the keys after these are type-ahead
LINE_ENDS = frozenset({"submit", "cancel"})  # a line's ⏎ and esc: the keys after are the table's
LIMIT_S = 1.0  # keys are never held longer than this for a line's focus


def moves_focus(app: App[Any], key: str, panes: tuple[Widget, ...]) -> bool:
    """Will this key, arriving now, open the filter, find or go-to line, or close the one
    that has the focus? Bindings are read as Textual will read them when the key comes back
    from the focused widget: its own first, then the screen's, then the app's. `panes`: the
    widgets whose focus leaves the app's own line keys in force (the table, the detail)."""
    if not isinstance(app.screen, DashboardScreen):
        return False  # a modal screen or the palette is up: its keys are its own
    if app.screen.maximized is not None:
        return False  # esc would minimize (the palette's "Maximize"), not come back
    focused = app.focused
    owner: object  # the node whose binding it must be
    if isinstance(focused, FilterBar | PromptBar):
        owner, actions = focused, LINE_ENDS
    elif focused is None or focused in panes:
        owner, actions = app, LINE_ACTIONS
    else:
        return False
    active = app.screen.active_bindings.get(key)
    return (active is not None and active.node is owner and active.enabled
            and not active.binding.priority and active.binding.action in actions)


class TypeAhead:
    """The keys held since a line's opening (or closing) key, until the focus has moved."""

    def __init__(self, app: App[Any], panes: Callable[[], tuple[Widget, ...]]) -> None:
        self._app = app
        self._panes = panes
        self._held: deque[events.Key | events.Paste] | None = None
        self._mover: events.Key | None = None
        self._limit: Timer | None = None

    async def route(self, event: events.Key | events.Paste,
                    pass_on: Callable[[events.Event], Awaitable[None]]) -> bool:
        """True when this key is taken care of here (held, or passed on and its followers
        released); False: the app handles it as usual."""
        if not event.is_forwarded:
            if self._held is not None:
                self._held.append(event)  # the focus has not moved yet
                return True
            if isinstance(event, events.Key) and moves_focus(self._app, event.key,
                                                             self._panes()):
                self._held = deque()
                self._mover = event
                # The focus normally moves within a frame or two and releases them;
                # should a binding ever not move it, keys are not held past a second.
                self._limit = self._app.set_timer(LIMIT_S, self._expired)
            return False
        if event is not self._mover:
            return False
        # Back from the focused widget: its binding opens or closes the line.
        self._mover = None
        closing = isinstance(self._app.focused, FilterBar | PromptBar)
        try:
            await pass_on(event)
        except BaseException:
            self._app.call_later(self.release)  # never held for good
            raise
        # An opened line has asked for the focus, and this comes after it; a closed line's
        # answer is still on its way: its handler releases them (release_after_focus).
        if not closing:
            self._app.call_later(self.release)
        return True

    def release_after_focus(self) -> None:
        """A line closed and the focus was sent back: release once it has arrived."""
        self._app.call_later(self.release)

    async def _expired(self) -> None:
        self._limit = None  # this timer is done (stopping it here would cancel us)
        await self.release()

    async def release(self) -> None:
        """The focus has moved (its call_later ran before this one): the keys held since go
        to the widget that now has it through Textual's own path, in order, ahead of any
        key still in the app's queue."""
        held, self._held = self._held or deque(), None
        if self._limit is not None:
            self._limit.stop()  # a later hold gets its own full second
            self._limit = None
        while held:
            await self._app.on_event(held.popleft())  # another opener holds the rest again
