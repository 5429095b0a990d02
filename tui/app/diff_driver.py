"""The terminal driver the dashboard runs with: Textual's own, writing through ScreenDiff.

`App(driver_class=...)` is Textual's public way to choose a driver and `Driver.write` the
one place a frame passes on its way out; nothing else of the driver changes. Windows keeps
Textual's driver unchanged (its console is not reached over SSH the same way).
"""

from __future__ import annotations

import os
import sys

from textual.driver import Driver

from tui.app.picture_layer import PictureLayer
from tui.app.screen_diff import ScreenDiff
from tui.termcaps import pictures

SYNC_END = "\x1b[?2026l"  # the end of a synchronized update: pictures go inside it
# Where to keep the text of the screen the app believes the terminal shows, after every
# frame (marks included): tests compare it with a real terminal's own dump of its screen.
SCREEN_FILE_ENV = "WAN_TUI_SCREEN_FILE"


def diff_driver_class(base: type[Driver]) -> type[Driver]:
    """`base` (Textual's driver for this platform) sending only the changed cells."""
    if sys.platform.startswith("win"):
        return base

    class DiffDriver(base):  # type: ignore[valid-type, misc]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.screen_diff = ScreenDiff()
            self.pictures = PictureLayer(pictures().mode)
            self._screen_file = os.environ.get(SCREEN_FILE_ENV)

        def start_application_mode(self) -> None:
            self.screen_diff.resize(0, 0)  # after a suspend the terminal shows the shell
            super().start_application_mode()

        def _diff_size(self) -> tuple[int, int]:
            try:
                size = os.get_terminal_size(self.fileno)
            except (OSError, ValueError):
                return self.screen_diff.width, self.screen_diff.height
            return size.columns, size.lines

        def write(self, data: str) -> None:
            diff = self.screen_diff
            # A resize may have reflowed or cleared the terminal: start from nothing
            # (Textual repaints the whole screen after a resize anyway).
            size = self._diff_size()
            if size != (diff.width, diff.height):
                diff.resize(*size)
            out = diff.feed(data)
            drawn = self.pictures.update(diff)
            if drawn:
                # Inside the frame's synchronized update, when it has one, so the terminal
                # shows the cells and the pictures over them at once.
                end = out.rfind(SYNC_END)
                out = out[:end] + drawn + out[end:] if end >= 0 else out + drawn
            if out:
                super().write(out)
                if self._screen_file:
                    self._keep_screen(self._screen_file)

        def _keep_screen(self, path: str) -> None:
            diff = self.screen_diff
            rows = ("".join(" " if t is None else t for t in row) for row in diff.want_text)
            text = f"{diff.width}x{diff.height} draws={self.pictures.draws}\n" + "\n".join(rows)
            with open(path + ".tmp", "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(path + ".tmp", path)

        def stop_application_mode(self) -> None:
            freed = self.pictures.close()  # kitty keeps images until told to free them
            if freed:
                super().write(freed)
            super().stop_application_mode()

        def redraw(self) -> None:
            """Forget what the terminal shows: the next frames send every cell."""
            self.screen_diff.forget()

    DiffDriver.__name__ = f"Diff{base.__name__}"
    return DiffDriver
