"""Sixel and kitty pictures, kept in step with the cell diff.

A picture widget drawing with a graphics protocol renders its cells as *marks*: one
private-use character per cell (U+F0000 + its slot), never sent to the terminal. In the
screen Textual composed (`ScreenDiff.want_text`) the marks left are exactly the cells of
the picture that show: whatever is drawn over it -- text, a toast, a modal's box --
replaced them. After each frame the layer compares, per picture, the rows whose cells are
all marks with what it drew last, and when they differ it writes blanks over the marked
cells (which also wipes sixel pixels: xterm and mlterm erase a cell's pixels when text is
written into it) and draws the picture's rows that show, one row of cells at a time:

- a row is drawn only when every cell of it shows, so nothing is drawn over text;
- never in the last two rows of the screen: a sixel leaves the cursor below its last row,
  and that must not be past the bottom (it would scroll the whole screen);
- sixel scrolling mode is reset first (`CSI ? 80 l`: the image at the cursor), and the
  cursor is saved and restored around everything, whatever the terminal does with it.

The marked cells of `have` (what the terminal shows) are set to the mark: the diff leaves
them to the layer, and any other text Textual draws there later differs and is sent.
The per-row encodings are made in a worker thread by the widget (`prepare`), never here.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tui.app import graphics
from tui.app.screen_diff import MARK_FIRST, ScreenDiff, _move, sgr_between

if TYPE_CHECKING:
    from PIL import Image

    from tui.termcaps import Choice

BOTTOM_ROWS_KEPT = 2  # rows at the bottom no picture row is drawn in (see above)
# kitty image ids: one per picture prepared, from a base unlikely to meet another program's
_KITTY_IDS = itertools.count(0x5754_0000 + (os.getpid() & 0xFFFF) * 16)

# (x, y, columns, rows, the widget's screen is the one shown) of a picture's cells
Box = tuple[int, int, int, int, bool]


def mark(slot: int) -> str:
    return chr(MARK_FIRST + slot)


@dataclass(frozen=True)
class Prepared:
    """A picture encoded for one size of its box: per row of cells, what draws it."""

    cols: int
    rows: int
    version: int
    row_out: tuple[str, ...]  # sixel data, or a kitty placement; "" where nothing shows
    kitty_id: int | None = None
    transmit: str = ""  # kitty: the image data, sent once before the first placement


def prepare(image: Image.Image, cols: int, rows: int, version: int,
            choice: Choice) -> Prepared:
    """Encode `image` to fit `cols` x `rows` cells (run it in a worker thread)."""
    cw, ch = choice.cell
    width, height = cols * cw, rows * ch
    if choice.mode == "sixel" and choice.answers.sixel_max:  # what XTSMGRAPHICS allows
        width = min(width, choice.answers.sixel_max[0])
        height = min(height, choice.answers.sixel_max[1])
    fitted = graphics.fit(image, width, height)
    width, height = fitted.size
    if choice.mode == "kitty":
        kid = next(_KITTY_IDS)
        out = tuple(graphics.kitty_place(kid, r + 1, (0, r * ch, width,
                                                      min(ch, height - r * ch)))
                    if r * ch < height else "" for r in range(rows))
        return Prepared(cols, rows, version, out, kid, graphics.kitty_transmit(kid, fitted))
    encoded = graphics.sixel_rows(fitted, ch, choice.colors)
    return Prepared(cols, rows, version,
                    tuple(encoded[r] if r < len(encoded) else "" for r in range(rows)))


@dataclass
class Source:
    """A picture widget as the layer sees it."""

    box: Callable[[], Box | None]
    version: int = 0
    prepared: Prepared | None = None


@dataclass
class Registry:
    """The picture widgets of this process (one terminal): slot -> Source."""

    sources: dict[int, Source] = field(default_factory=dict)
    _next: itertools.count = field(default_factory=lambda: itertools.count(1))
    _free: list[int] = field(default_factory=list)

    def add(self, box: Callable[[], Box | None]) -> int:
        slot = self._free.pop() if self._free else next(self._next)
        if slot >= 0xFFFD:
            raise RuntimeError("too many pictures")
        self.sources[slot] = Source(box)
        return slot

    def remove(self, slot: int) -> None:
        if self.sources.pop(slot, None) is not None:
            self._free.append(slot)


registry = Registry()


@dataclass
class _Drawn:
    key: tuple
    rows: frozenset[int]
    kitty_id: int | None


class PictureLayer:
    """What one terminal shows of the registered pictures."""

    def __init__(self, mode: str, sources: Registry = registry) -> None:
        self.mode = mode
        self.sources = sources
        self._drawn: dict[int, _Drawn] = {}
        self._sent_ids: set[int] = set()  # kitty images the terminal holds
        self.draws = 0  # pictures (re)drawn, for tests and benchmarks

    def update(self, diff: ScreenDiff) -> str:
        """What to write after a frame so the pictures agree with `diff`'s screen."""
        if not self.sources.sources and not self._drawn:
            return ""
        out: list[str] = []
        for slot, source in list(self.sources.sources.items()):
            self._update_one(diff, slot, source, out)
        for slot in [s for s in self._drawn if s not in self.sources.sources]:
            gone = self._drawn.pop(slot)
            self._forget_kitty(gone.kitty_id, out)
        if not out:
            return ""
        return "\x1b7" + "".join(out) + "\x1b[0m\x1b8"

    def _update_one(self, diff: ScreenDiff, slot: int, source: Source,
                    out: list[str]) -> None:
        box = source.box()
        drawn = self._drawn.get(slot)
        if box is None:
            if drawn is not None:
                self._drawn.pop(slot)
                self._unplace(drawn, out)
            return
        x, y, cols, rows, active = box
        sign = mark(slot)
        width, height = diff.width, diff.height
        x0, x1 = max(0, x), min(width, x + cols)
        want, have = diff.want_text, diff.have_text
        marked: list[tuple[int, list[int]]] = []  # (row, columns showing the mark)
        full: list[int] = []
        stale = False
        whole = [sign] * (x1 - x0)
        for row in range(max(0, y), min(height, y + rows)):
            line = want[row][x0:x1]
            if line == whole and x0 == x and x1 == x + cols:
                cols_here = list(range(x0, x1))
                full.append(row)
            else:
                cols_here = [cx for cx in range(x0, x1) if line[cx - x0] == sign]
            if cols_here:
                marked.append((row, cols_here))
                if not stale:
                    hline = have[row]
                    stale = any(hline[cx] != sign for cx in cols_here)
        prepared = source.prepared
        usable = (prepared is not None and active and prepared.cols == cols
                  and prepared.rows == rows and prepared.version == source.version)
        shown = frozenset(r for r in full if r < height - BOTTOM_ROWS_KEPT
                          and prepared.row_out[r - y]  # type: ignore[union-attr]
                          ) if usable else frozenset()
        key = (source.version, x, y, cols, rows, prepared.kitty_id if prepared else None,
               id(prepared))
        if drawn is not None and drawn.key == key and drawn.rows == shown and not stale:
            return
        if drawn is not None:
            self._unplace(drawn, out)
        self._blank(diff, marked, sign, out)
        if shown:
            assert prepared is not None
            if self.mode == "sixel":
                out.append("\x1b[?80l")  # sixel scrolling mode: the image at the cursor
            elif prepared.kitty_id not in self._sent_ids and prepared.kitty_id is not None:
                out.append(prepared.transmit)
                self._sent_ids.add(prepared.kitty_id)
            for row in sorted(shown):
                out.append(_move(x, row))
                out.append(prepared.row_out[row - y])
            self.draws += 1
        if drawn is not None and drawn.kitty_id is not None and (
                prepared is None or drawn.kitty_id != prepared.kitty_id):
            self._forget_kitty(drawn.kitty_id, out)
        self._drawn[slot] = _Drawn(key, shown, prepared.kitty_id if prepared else None)

    def _blank(self, diff: ScreenDiff, marked: list[tuple[int, list[int]]], sign: str,
               out: list[str]) -> None:
        """Spaces over the marked cells (in the look Textual gave them); the diff's record
        of the terminal then holds the mark there."""
        current = None
        for row, cols in marked:
            looks = diff.want_look[row]
            hrow, hlook = diff.have_text[row], diff.have_look[row]
            start = 0
            for n in range(1, len(cols) + 1):
                if n < len(cols) and cols[n] == cols[n - 1] + 1:
                    continue  # the run of adjacent columns goes on
                first, count = cols[start], n - start
                look = looks[first]
                if look is not None:
                    out.append(_move(first, row))
                    out.append(sgr_between(current, look))
                    current = look
                    out.append(" " * count)
                start = n
            for cx in cols:
                hrow[cx], hlook[cx] = sign, looks[cx]

    def _unplace(self, drawn: _Drawn, out: list[str]) -> None:
        if drawn.kitty_id is not None and drawn.rows:
            out.append(graphics.kitty_unplace(drawn.kitty_id))

    def _forget_kitty(self, kitty_id: int | None, out: list[str]) -> None:
        if kitty_id is not None and kitty_id in self._sent_ids:
            self._sent_ids.discard(kitty_id)
            out.append(graphics.kitty_forget(kitty_id))

    def close(self) -> str:
        """What to write when the app leaves the terminal: kitty's images freed."""
        out: list[str] = []
        for kitty_id in list(self._sent_ids):
            self._forget_kitty(kitty_id, out)
        self._drawn.clear()
        return "".join(out)
