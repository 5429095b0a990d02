"""Play a finished clip in the terminal, in half-blocks, in a modal; esc stops.

Half-blocks are plain coloured text, so this works in tmux and over any SSH link. The clip
is decoded in a worker thread, scaled to at most PLAY_COLS x PLAY_ROWS cells and thinned
to at most 12 frames a second (tui.media.frames.PLAY_FPS_CAP): a 64x18 frame is ~40 KB of
escape codes, so that is what a link carries per frame. The UI thread only swaps strips.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from tui import format as fmt
from tui.app.facade import Facade
from tui.app.widgets.picture import halfblock_strips
from tui.jobs import Job

PLAY_COLS, PLAY_ROWS = 64, 18  # the largest picture played, in cells (16:9 at 64 columns)


def play_size(video_w: int, video_h: int, cols: int, rows: int) -> tuple[int, int]:
    """Pixels (width, even height) that fit `cols` x `rows` cells, keeping the aspect."""
    cols, rows = max(4, min(cols, PLAY_COLS)), max(2, min(rows, PLAY_ROWS))
    w = cols
    h = round(w * video_h / video_w) if video_w else rows * 2
    if h > rows * 2:
        h = rows * 2
        w = max(2, round(h * video_w / video_h))
    return w, max(2, h - h % 2)


class FrameView(Widget):
    """The frame being shown, as strips of half-blocks."""

    DEFAULT_CSS = "FrameView { width: auto; height: auto; }"

    def __init__(self, width: int, height: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cols, self.rows = width, height // 2
        self.strips: list[Strip] = [Strip.blank(self.cols)] * self.rows
        self.frames_shown = 0
        self.frame_index = -1

    def get_content_width(self, container, viewport) -> int:
        return self.cols

    def get_content_height(self, container, viewport, width) -> int:
        return self.rows

    def show(self, index: int, strips: list[Strip]) -> None:
        self.strips = strips
        self.frame_index = index
        self.frames_shown += 1
        self.refresh()

    def render_line(self, y: int) -> Strip:
        return self.strips[y] if 0 <= y < len(self.strips) else Strip.blank(self.cols)


class PlayerScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    PlayerScreen { align: center middle; }
    PlayerScreen > Vertical { width: auto; height: auto; border: round $accent;
                              background: $surface; padding: 0 1; }
    PlayerScreen #player-caption { width: 64; color: $text-muted; }
    """
    BINDINGS = [Binding("escape,w,q", "stop", "stop", id="player_stop")]

    def __init__(self, job: Job, path: Path) -> None:
        super().__init__()
        self.job, self.path = job, path
        video = job.video
        width, height = play_size(video.width if video else 16, video.height if video else 9,
                                  PLAY_COLS, PLAY_ROWS)
        self.pixels = (width, height)
        self.picture = FrameView(width, height, id="player-frame")
        self._stop = threading.Event()
        self.ended = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield self.picture
            yield Static(self._caption(""), id="player-caption")

    def _caption(self, state: str) -> Text:
        return Text.assemble((f"#{self.job.id} ", "bold"), fmt.excerpt(self.job.prompt, 40),
                             ("  " + state if state else "  esc stops", "grey62"))

    def on_mount(self) -> None:
        self._play()

    @work(thread=True, exclusive=True, group="player", exit_on_error=False)
    def _play(self) -> None:
        fps = self.job.video.fps if self.job.video else None
        width, height = self.pixels
        try:
            facade: Facade = self.app.facade  # type: ignore[attr-defined]  # WanApp's
            for frame in facade.play_frames(self.path, width, height, fps, self._stop.is_set):
                if self._stop.is_set():
                    return
                strips = halfblock_strips(frame.rgb, frame.width, frame.height)
                self.app.call_from_thread(self.picture.show, frame.index, strips)
        except Exception as err:  # a file that stopped decoding: say so, keep the dashboard
            self.app.call_from_thread(self._ended, f"cannot play: {err}")
            return
        self.app.call_from_thread(self._ended, "the end · esc closes")

    def _ended(self, state: str) -> None:
        self.ended = True
        self.query_one("#player-caption", Static).update(self._caption(state))

    def action_stop(self) -> None:
        self._stop.set()
        self.dismiss(None)

    def on_unmount(self) -> None:
        self._stop.set()
