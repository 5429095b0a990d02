"""The PNG screenshots keep every character on its terminal column, as a terminal does: a bold
run, a run of many cells and a wide character end where the rows around them say they end."""

from __future__ import annotations

import importlib.util
import io
import re
from itertools import pairwise
from pathlib import Path

from PIL import Image
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
_spec = importlib.util.spec_from_file_location("screenshot_png", SCREENSHOTS / "png.py")
assert _spec and _spec.loader
png = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(png)

WIDTH = 70
LINES = [
    # (runs of (text, style)): each line ends in a marker `█` at column 64
    [("█" * 64, "bold"), ("█", "")],
    [("█", ""), ("█", "bold"), ("█" * 30, "italic"), ("█" * 32, ""), ("█", "")],
    [("日本語の行", ""), ("█" * 54, "bold"), ("█", "")],          # wide characters first
    [("a hot-air balloon ", "bold"), ("drifts ", ""), ("x" * 39, "bold"), ("█", "")],
    [("✔ done ◐ ⚑ ⚠ ", ""), ("█" * 51, ""), ("█", "bold")],
]
MARKER_COLUMN = 64


def terminal_svg() -> str:
    """What Textual's save_screenshot writes: Rich's SVG export of styled cells."""
    console = Console(record=True, width=WIDTH, force_terminal=True, color_system="truecolor",
                      file=io.StringIO())
    for runs in LINES:
        line = Text()
        for text, style in runs:
            line.append(text, style=style)
        assert cell_len(line.plain) == MARKER_COLUMN + 1
        console.print(line)
        console.print()  # a blank line between: each line's ink is a band of its own
    return console.export_svg(title="test")


def drawn_cells(svg: str) -> dict[str, list[tuple[float, str]]]:
    """Per terminal line (its clip path): (x, what) of every character drawn on its own, a
    block element drawn as a rectangle being `block`."""
    rows: dict[str, list[tuple[float, str]]] = {}
    for tag, attrs, text in re.findall(r"<(text|rect) ([^>]*?)/?>(?:([^<]*)</text>)?", svg):
        line = re.search(r'clip-path="url\(#([^)]+)\)"', attrs)
        x = re.search(r'\bx="([\d.]+)"', attrs)
        if not (line and x and "class=" in attrs):
            continue  # the backgrounds, the title
        if tag == "text" and (len(text) != 1 or text.isspace()):
            continue
        rows.setdefault(line.group(1), []).append(
            (float(x.group(1)), text if tag == "text" else "block"))
    return rows


def test_every_character_is_drawn_at_its_own_cells_x():
    svg = terminal_svg()
    cell = float(re.search(r'textLength="([\d.]+)"', svg).group(1)) / 64  # the first run
    drawn = png.cells(svg)
    rows = [row for row in drawn_cells(drawn).values() if row]
    assert len(rows) == len(LINES)
    for row, runs in zip(rows, LINES, strict=True):
        expected, column = [], 0
        for char in "".join(text for text, _ in runs):
            if char != " ":
                expected.append((float(column), "block" if char in png.BLOCKS else char))
            column += cell_len(char)
        got = [(round(x / cell, 3), what) for x, what in row]
        assert got == expected
    assert "Fira Code, monospace" not in drawn


def test_block_elements_fill_their_share_of_the_cell():
    console = Console(record=True, width=10, force_terminal=True, file=io.StringIO())
    console.print("a▀▄▌▐▏b")
    exported = console.export_svg()
    svg = png.cells(exported)
    cell = float(re.search(r'textLength="([\d.]+)"', exported).group(1)) / 7
    rects = [dict(re.findall(r'\b(x|y|width|height)="([\d.]+)"', tag))
             for tag in re.findall(r"<rect class=[^>]*>", svg)]
    got = [(round(float(r["x"]) / cell, 3), round(float(r["width"]) / cell, 3)) for r in rects]
    # ▀ ▄ the whole width of cells 1 and 2, ▌ the left half of 3, ▐ the right half of 4,
    # ▏ the left eighth of 5; a and b stay text on cells 0 and 6.
    assert got == [(1.0, 1.0), (2.0, 1.0), (3.0, 0.5), (4.5, 0.5), (5.0, 0.125)]
    upper, lower = rects[0], rects[1]
    assert float(upper["height"]) == float(lower["height"])
    assert abs(float(lower["y"]) - float(upper["y"]) - float(upper["height"])) < 0.01
    assert [x for x, what in next(iter(drawn_cells(svg).values())) if what != "block"] == \
        [0.0, 6 * cell]


def ink_right_edges(png_bytes: bytes, rows: int) -> list[int]:
    """For each text row of the picture, the x of its rightmost light pixel."""
    rgba = Image.open(io.BytesIO(png_bytes)).convert("RGBA")
    image = Image.alpha_composite(Image.new("RGBA", rgba.size, "black"), rgba).convert("L")
    pixels = image.load()
    width, height = image.size
    inside = range(4, width - 4)  # not the window's rounded, anti-aliased frame
    light_rows = [y for y in range(height) if any(pixels[x, y] > 150 for x in inside)]
    bands: list[list[int]] = []
    for y in light_rows:  # rows of light pixels, grouped by text line
        if bands and y - bands[-1][-1] <= 2:
            bands[-1].append(y)
        else:
            bands.append([y])
    bands = [b for b in bands if len(b) > 4][-rows:]  # the title bar's text first: dropped
    return [max(x for y in band for x in inside if pixels[x, y] > 150) for band in bands]


def test_in_the_png_every_line_ends_on_the_same_column():
    import cairosvg

    svg = png.cells(terminal_svg())
    picture = cairosvg.svg2png(bytestring=svg.encode(), output_width=WIDTH * 12)
    edges = ink_right_edges(picture, len(LINES))
    assert len(edges) == len(LINES)
    # The marker cell ends every line at column 64: its right edges agree to a pixel or two
    # (glyphs of different fonts may differ by a pixel inside their cell; a drift of a column
    # would be 10 pixels at this size).
    assert max(edges) - min(edges) <= 2, edges


def test_without_the_rewrite_cairo_drifts():
    """What the rewrite fixes, measured the same way: a long run drawn with the font's own
    advance ends away from the column a run of single cells ends on."""
    import cairosvg

    svg = terminal_svg().replace("Fira Code, monospace", f"{png.FONT}, monospace")
    picture = cairosvg.svg2png(bytestring=svg.encode(), output_width=WIDTH * 12)
    edges = ink_right_edges(picture, len(LINES))
    assert max(edges) - min(edges) > 4, edges


def test_box_drawing_lines_join_across_cells_and_lines():
    console = Console(record=True, width=10, force_terminal=True, file=io.StringIO())
    console.print("╭───╮\n│ab │\n╰───╯")
    rects = [{k: float(v) for k, v in re.findall(r'\b(x|y|width|height)="([\d.]+)"', tag)}
             for tag in re.findall(r"<rect class=[^>]*>", png.cells(console.export_svg()))]
    top_row = sorted((r for r in rects if r["height"] < r["width"] and r["y"] < 24),
                     key=lambda r: r["x"])
    # ╭ ─ ─ ─ ╮: one unbroken horizontal stroke from the middle of the first cell to the last's
    assert all(abs(a["x"] + a["width"] - b["x"]) < 2.5 for a, b in pairwise(top_row))
    left = sorted((r for r in rects if r["width"] < r["height"] and r["x"] < 12),
                  key=lambda r: r["y"])
    # ╭ │ ╰ down the left side (│ as its upper and lower half): each stroke reaches the next
    assert len(left) == 4
    assert all(a["y"] + a["height"] >= b["y"] for a, b in pairwise(left))
