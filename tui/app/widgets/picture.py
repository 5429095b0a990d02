"""Pictures in the terminal: kitty graphics or sixel where the terminal has shown it draws
them, half-blocks elsewhere (tui/termcaps.py decides, once, before the app runs).

Half-blocks are coloured text: two pixels a cell, any colour terminal, tmux, any SSH link.
With a graphics protocol the widget renders marks (picture_layer.py) and the terminal
driver draws the picture over the cells whose marks show; its encoding is made here, in a
worker thread, for the size the widget has.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from tui.app import picture_layer
from tui.app.graphics import fit
from tui.termcaps import pictures

log = logging.getLogger(__name__)


def picture_mode() -> str:
    """kitty | sixel | halfblock | off: how this process draws pictures."""
    return pictures().mode


class Picture(Widget):
    """A still picture (a Pillow image), drawn as the terminal allows."""

    DEFAULT_CSS = "Picture { width: 1fr; height: auto; }"

    def __init__(self, image=None, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.mode = picture_mode()
        self._image = image
        self._version = 0
        self._slot: int | None = None
        self._strips: list[Strip] = []
        self._strips_for: tuple[int, int, int] | None = None
        self._preparing: tuple[int, int, int] | None = None

    @property
    def image(self):
        return self._image

    @image.setter
    def image(self, image) -> None:
        self._image = image
        self._version += 1
        self._strips_for = None
        if self._slot is not None:
            picture_layer.registry.sources[self._slot].version = self._version
        self.refresh(layout=True)
        self._prepare()

    @property
    def graphic(self) -> bool:
        return self.mode in ("kitty", "sixel")

    def get_content_height(self, container, viewport, width: int) -> int:
        if self._image is None or self.mode == "off":
            return 0
        w, h = self._image.size
        cw, ch = pictures().cell if self.graphic else (1, 2)
        return max(1, round(width * h * cw / max(1, w) / ch))

    def on_mount(self) -> None:
        if self.graphic:
            self._slot = picture_layer.registry.add(self._box)
            picture_layer.registry.sources[self._slot].version = self._version
            self._prepare()

    def on_unmount(self) -> None:
        if self._slot is not None:
            picture_layer.registry.remove(self._slot)
            self._slot = None

    def on_resize(self) -> None:
        self._prepare()

    def _box(self) -> picture_layer.Box | None:
        """Where the picture's cells are on the screen, and whether that screen shows."""
        if not self.is_mounted or not self.display or self._image is None:
            return None
        try:
            region = self.content_region
            active = self.screen.is_active
        except Exception:  # not on a screen (being removed): nothing to draw
            return None
        if region.width <= 0 or region.height <= 0:
            return None
        return region.x, region.y, region.width, region.height, active

    def _prepare(self) -> None:
        """Encode the picture for the widget's size, in a worker thread."""
        if not self.graphic or self._image is None or self._slot is None:
            return
        size = self.content_size
        want = (self._version, size.width, size.height)
        if size.width <= 0 or size.height <= 0 or want == self._preparing:
            return
        self._preparing = want
        self.run_worker(lambda: self._encode(want), thread=True, group="picture-encode",
                        exclusive=True, exit_on_error=False)

    def _encode(self, want: tuple[int, int, int]) -> None:
        version, cols, rows = want
        try:
            prepared = picture_layer.prepare(self._image, cols, rows, version, pictures())
        except Exception:  # a picture is a nicety: the cells stay blank
            log.exception("encoding a picture for the terminal")
            return
        self.app.call_from_thread(self._prepared, prepared)

    def _prepared(self, prepared: picture_layer.Prepared) -> None:
        # An encoding for an image or a size the widget has since left is dropped: the one
        # for what it shows now is on its way (image setter, on_resize).
        size = self.content_size
        if self._slot is not None and prepared.version == self._version \
                and (prepared.cols, prepared.rows) == (size.width, size.height):
            picture_layer.registry.sources[self._slot].prepared = prepared
            self.refresh()  # a frame, so the driver draws it

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        style = self.rich_style
        if self._image is None or self.mode == "off" or width <= 0:
            return Strip.blank(width, style)
        if self.graphic and self._slot is not None:
            return Strip([Segment(picture_layer.mark(self._slot) * width, style)], width)
        key = (self._version, width, self.content_size.height)
        if key != self._strips_for:
            pixels = fit(self._image, width, self.content_size.height * 2)
            self._strips = halfblock_strips(pixels.tobytes(), *pixels.size)
            self._strips_for = key
        if y < len(self._strips):
            strip = self._strips[y]
            return strip.extend_cell_length(width, style) if strip.cell_length < width \
                else strip
        return Strip.blank(width, style)


def make_picture(**kwargs) -> Widget:
    return Picture(**kwargs)


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
