"""Pictures in the terminal: textual-image with the best protocol the terminal has.

kitty's graphics protocol or sixel where the terminal answers for them; half-block
characters (two pixels a cell, any colour terminal) inside tmux, when the output is not a
terminal, and wherever the terminal offers nothing better -- which is also what plain SSH
to such a terminal gets. `WAN_TUI_IMAGES=halfblock` forces the half-blocks.

textual-image asks the terminal what it supports when it is first imported, which only
works before Textual owns the terminal: the detail pane makes its picture widget in
WanApp.__init__, before the app runs, and that is the first import.
"""

from __future__ import annotations

import logging
import os
import sys
from functools import cache, lru_cache
from pathlib import Path

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

log = logging.getLogger(__name__)


def _halfblocks_only() -> bool:
    if os.environ.get("WAN_TUI_IMAGES", "").lower() in ("halfblock", "halfblocks"):
        return True
    if os.environ.get("TMUX"):  # tmux does not pass graphics through reliably
        return True
    out = sys.__stdout__
    return out is None or not out.isatty()


@cache
def picture_class() -> type[Widget]:
    try:
        return _textual_image_class()
    except Exception as exc:
        # Its terminal queries can fail on an odd tty (a pty with no size divides by zero):
        # assume the common 10x20-pixel cell, as it does when a query goes unanswered.
        log.warning("textual-image could not ask the terminal (%r); assuming 10x20 cells",
                    exc)
    try:
        from textual_image import _terminal

        _terminal.get_cell_size._result = _terminal.CellSize(10, 20)  # type: ignore[attr-defined]
        return _textual_image_class()
    except Exception as exc:  # still nothing: the dashboard goes on without pictures
        log.warning("no pictures: textual-image is unusable here (%r)", exc)
        return NoPicture


def _textual_image_class() -> type[Widget]:
    if _halfblocks_only():
        from textual_image.widget import HalfcellImage

        return HalfcellImage
    from textual_image.widget import Image

    return Image


class NoPicture(Widget):
    """Stands in where textual-image cannot work: takes an image, shows nothing."""

    DEFAULT_CSS = "NoPicture { height: 0; }"

    def __init__(self, image=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.image = image


def make_picture(**kwargs) -> Widget:
    return picture_class()(**kwargs)


def load_image(path: Path):
    """The picture's pixels, read now (call it in a worker thread): the widget then only
    scales them when it draws."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.copy()


@lru_cache(maxsize=1 << 16)
def _style(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Style:
    return Style.from_color(_colour(top), _colour(bottom))


@lru_cache(maxsize=1 << 15)
def _colour(rgb: tuple[int, int, int]):
    from rich.color import Color

    return Color.from_rgb(*rgb)


def halfblock_strips(rgb: bytes, width: int, height: int) -> list[Strip]:
    """rgb24 pixels as lines of "▀": the upper pixel is the ink, the lower the paper.

    Colours are rounded to multiples of 8 so the style cache stays small and a terminal
    line carries runs of equal styles (Textual merges them)."""
    strips: list[Strip] = []
    row = width * 3
    for y in range(0, height - 1, 2):
        top_row = rgb[y * row:(y + 1) * row]
        low_row = rgb[(y + 1) * row:(y + 2) * row]
        segments = []
        for x in range(0, row, 3):
            top = (top_row[x] & 0xF8, top_row[x + 1] & 0xF8, top_row[x + 2] & 0xF8)
            low = (low_row[x] & 0xF8, low_row[x + 1] & 0xF8, low_row[x + 2] & 0xF8)
            segments.append(Segment("▀", _style(top, low)))
        strips.append(Strip(Segment.simplify(segments), width))
    return strips
