"""Textual's SVG screenshots as PNGs with every character on its terminal column.

Rich writes one `<text>` per run of equally styled cells, with `x` at the run's first cell and
`textLength` for the run's width. A browser stretches the run to that width; cairo (cairosvg)
ignores `textLength` and advances each glyph by the font's own width, which is not the cell
width the SVG was laid out for (DejaVu Sans Mono: 0.602 em against Rich's 0.61 em). A long run
then ends a column or more away from where the rows around it put that column, and a row made
of one bold run (the highlighted row) drifts against its neighbours, which a terminal never
does. So each run is split into one `<text>` per character, at the x of its own cell; a wide
character (CJK, most emoji) takes two cells, as it does in a terminal.

    cells(svg_text) -> svg_text      pure: the rewrite (tests check its positions)
    to_png(svg_path)                 the PNG beside the SVG (needs cairosvg and libcairo)
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from rich.cells import cell_len

# One run of cells as Rich writes it: attributes (x, y, textLength, class, clip-path), text.
_RUN = re.compile(r'<text (?P<attrs>[^>]*\btextLength="(?P<length>[\d.]+)"[^>]*)>'
                  r"(?P<text>[^<]*)</text>")
_X = re.compile(r'\bx="(?P<x>[\d.]+)"')
# cairo has no per-glyph fallback: DejaVu Sans Mono has every symbol the app draws
# (✔ ✘ ⚑ ⚠ ⌛ ◐ ▏), Fira Code (Textual's choice) does not.
FONT = "DejaVu Sans Mono"


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


# Block elements as a terminal draws them: rectangles filling their share of the cell, not
# glyphs (a glyph narrower than the cell leaves a seam between neighbours, so a picture in
# half-blocks or a progress bar would show stripes). (left, top, width, height) in cells.
BLOCKS: dict[str, tuple[float, float, float, float]] = {
    "▀": (0, 0, 1, 1 / 2), "▔": (0, 0, 1, 1 / 8), "▐": (1 / 2, 0, 1 / 2, 1),
    "▕": (7 / 8, 0, 1 / 8, 1),
    **{chr(0x2580 + n): (0, 1 - n / 8, 1, n / 8) for n in range(1, 9)},  # ▁ … █
    **{chr(0x2590 - n): (0, 0, n / 8, 1) for n in range(1, 8)},  # ▏ … ▉
}
# Box-drawing lines, also drawn as a terminal draws them (joined, no gaps between cells):
# which of (up, down, left, right) each has, and whether it is heavy.
LINES: dict[str, tuple[str, bool]] = {
    "─": ("lr", False), "│": ("ud", False), "┌": ("dr", False), "┐": ("dl", False),
    "└": ("ur", False), "┘": ("ul", False), "├": ("udr", False), "┤": ("udl", False),
    "┬": ("dlr", False), "┴": ("ulr", False), "┼": ("udlr", False), "╭": ("dr", False),
    "╮": ("dl", False), "╰": ("ur", False), "╯": ("ul", False), "╴": ("l", False),
    "╵": ("u", False), "╶": ("r", False), "╷": ("d", False),
    "━": ("lr", True), "┃": ("ud", True), "┏": ("dr", True), "┓": ("dl", True),
    "┗": ("ur", True), "┛": ("ul", True), "┣": ("udr", True), "┫": ("udl", True),
    "┳": ("dlr", True), "┻": ("ulr", True), "╋": ("udlr", True),
}


def _line_rects(char: str, x: float, top: float, cell: float, height: float,
                ) -> list[tuple[float, float, float, float]]:
    """(x, y, width, height) of the strokes of a box-drawing character's cell."""
    arms, heavy = LINES[char]
    stroke = cell * (0.2 if heavy else 0.1)
    mid_x, mid_y = x + cell / 2, top + height / 2
    half = stroke / 2
    spans = {"l": (x, mid_y - half, cell / 2 + half, stroke),
             "r": (mid_x - half, mid_y - half, cell / 2 + half, stroke),
             "u": (mid_x - half, top, stroke, height / 2 + half),
             "d": (mid_x - half, mid_y - half, stroke, height / 2 + half)}
    return [spans[arm] for arm in arms]


# Rich's layout: a line's text sits on y = line * line-height + font-size, its cells' boxes
# start 1.5 below line * line-height and are line-height + 0.25 tall (overlapping by a hair).
_FONT_SIZE = re.compile(r"font-size: (?P<size>[\d.]+)px;\s*line-height: (?P<line>[\d.]+)px")
_Y = re.compile(r'\by="(?P<y>[\d.]+)"')


def _block(char: str, rest: str, x: float, cell: float, line: tuple[float, float] | None,
           ) -> str | None:
    """A block element or a box-drawing line as rectangles; `line`: (font size, line height)
    of the picture."""
    y_match = _Y.search(rest)
    if (char not in BLOCKS and char not in LINES) or line is None or y_match is None:
        return None
    font_size, line_height = line
    top = float(y_match.group("y")) - font_size + 1.5
    height = line_height + 0.25
    if char in BLOCKS:
        left, share_top, width, share = BLOCKS[char]
        rects = [(x + left * cell, top + share_top * height, width * cell, share * height)]
    else:
        rects = _line_rects(char, x, top, cell, height)
    look = _Y.sub("", rest)  # the class gives the colour
    return "".join(f'<rect {look} x="{_number(rx)}" y="{_number(ry)}" width="{_number(rw)}"'
                   f' height="{_number(rh)}" shape-rendering="crispEdges"/>'
                   for rx, ry, rw, rh in rects)


def _split(match: re.Match[str], line: tuple[float, float] | None) -> str:
    attrs, text = match.group("attrs"), html.unescape(match.group("text"))
    if not text:
        return match.group(0)
    # Rich's cell width (0.61 em). Rich gives the run len(text) cells' width here but moves the
    # next run on by its cell_len: its own textLength is short for a wide character.
    cell = float(match.group("length")) / len(text)
    x_match = _X.search(attrs)
    if x_match is None:
        return match.group(0)
    x0 = float(x_match.group("x"))
    rest = _X.sub("", re.sub(r'\s*\btextLength="[^"]*"', "", attrs)).strip()
    out, column = [], 0
    for char in text:
        cells = cell_len(char)
        x = x0 + column * cell
        if char not in (" ", "\xa0") and cells:
            out.append(_block(char, rest, x, cell, line) or
                       f'<text {rest} x="{_number(x)}" textLength="{_number(cells * cell)}">'
                       f"{html.escape(char)}</text>")
        column += cells
    return "".join(out)


def cells(svg: str) -> str:
    """The same picture with one `<text>` per character, each at its own cell's x. Spaces are
        left out: their background is a rect of its own, and they draw nothing. Block elements
    (█ ▀ ▄ ▌ ▏ …) become rectangles of their share of the cell, box-drawing lines (─ │ ╭ …)
    strokes that join their neighbours'."""
    sizes = _FONT_SIZE.search(svg)
    line = (float(sizes.group("size")), float(sizes.group("line"))) if sizes else None
    return _RUN.sub(lambda run: _split(run, line), svg).replace(
        "Fira Code, monospace", f"{FONT}, monospace")


def to_png(svg_path: Path, width: int = 1600) -> Path:
    import cairosvg  # a screenshot tool's dependency (the test extra), not the app's

    png = svg_path.with_suffix(".png")
    cairosvg.svg2png(bytestring=cells(svg_path.read_text(encoding="utf-8")).encode(),
                     write_to=str(png), output_width=width)
    return png
