"""Textual's Footer, made cheaper to keep up to date.

Textual rebuilds every key of the footer (a recompose: some 15-20 ms here) whenever the
bindings may have changed, which is every focus change, and often twice for one. Closing
the filter line moves focus back to the table and starts a window read: paid up front,
those rebuilds delayed the filtered rows by a frame or two. This footer
- recomposes only when what it would show has changed, and
- can be held (while the app draws something the user waits for) and released after.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer

# Always on the footer, however narrow the terminal: the way to every other key, and out.
KEPT_ACTIONS = frozenset({"help", "request_quit", "command_palette"})


class LazyFooter(Footer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple | None = None
        self._held = 0
        self._pending = False

    def _signature(self) -> tuple:
        """What compose would draw: the keys shown, their labels, enabled and tooltips."""
        active = self.screen.active_bindings
        keys = tuple(
            (binding.key, binding.action, binding.description, binding.group, enabled,
             tooltip)
            for _, binding, enabled, tooltip in active.values() if binding.show)
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        return (keys, palette[2] if palette else None, self.compact,
                self.show_command_palette, self.app.size.width)

    def compose(self) -> ComposeResult:
        """Textual's keys, less those that do not fit: from the end, never `?` or `q`
        (a footer cut at the edge hid both at 80 columns)."""
        widgets = list(super().compose())
        # Footer's key widget is not exported: known by what it carries.
        keys = [w for w in widgets if hasattr(w, "key_display") and hasattr(w, "action")]
        if len(keys) == len(widgets):  # no groups: each key is one widget
            room = self.app.size.width

            def width(key: Widget) -> int:
                return cell_len(key.key_display) + cell_len(key.description) + 3  # type: ignore[attr-defined]

            total = sum(width(k) for k in keys)
            for key in reversed(list(keys)):
                if total <= room:
                    break
                if key.action.removeprefix("app.") not in KEPT_ACTIONS:
                    keys.remove(key)
                    total -= width(key)
            widgets = keys
            self.styles.grid_size_columns = len(widgets)
        yield from widgets

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._recompose_if_changed)

    def bindings_changed(self, screen: Screen) -> None:
        # Footer.compose waits for this private flag and there is no public way to set it;
        # Footer's own bindings_changed sets it the same way.
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            if self._held:
                self._pending = True
            else:
                self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if not self.is_attached or self._held:
            self._pending = self._pending or bool(self._held)
            return
        signature = self._signature()
        if signature == self._shown:
            return
        self._shown = signature
        await self.recompose()

    def hold(self) -> None:
        """Changes wait (the next frame is for something else) until `release`."""
        self._held += 1

    def release(self) -> None:
        self._held = max(0, self._held - 1)
        if not self._held and self._pending:
            self._pending = False
            # Via our own queue: an after-refresh callback runs on the pump that asked for
            # it, and a worker's (the app's) cannot wait for a recompose it would block.
            self.call_later(self.call_after_refresh, self._recompose_if_changed)
