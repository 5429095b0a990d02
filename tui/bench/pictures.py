"""Pictures benchmark: what one detail-pane picture costs in bytes and encoding time, per way
of drawing it.

    python -m tui.bench.pictures

The picture is a frame like the simulator's (colour bars and text, 1280x720), in the detail
pane's box: 40 x 11 cells, at the cell sizes the real terminals reported (xterm's 6x13, kitty's
9x20, mlterm's 10x22). For each: the bytes the terminal is sent to show it once (half-blocks:
the SGR-coded text Rich writes for the strips; sixel: every row's sequence; kitty: the PNG
sent once plus each row's placement), and the median encoding time over 5 runs (made in a
worker thread by the dashboard, never on its event loop). Redrawing after a toast leaves
costs the rows again for sixel, only the placements for kitty (the image stays in the
terminal), and the changed cells for half-blocks.
"""

from __future__ import annotations

import io
import statistics
import time

from PIL import Image, ImageDraw
from rich.console import Console
from rich.segment import Segment

from tui.app import graphics
from tui.app.widgets.picture import halfblock_strips

COLS, ROWS = 40, 11
CELLS = {"xterm (6x13)": (6, 13), "kitty (9x20)": (9, 20), "mlterm (10x22)": (10, 22)}


def frame() -> Image.Image:
    image = Image.new("RGB", (1280, 720))
    draw = ImageDraw.Draw(image)
    colours = [(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192),
               (192, 0, 0), (0, 0, 192)]
    for n, colour in enumerate(colours):
        draw.rectangle((n * 1280 // 7, 0, (n + 1) * 1280 // 7, 600), fill=colour)
    for n in range(0, 1280, 40):
        draw.rectangle((n, 600, n + 20, 720), fill=(n % 255, 64, 255 - n % 255))
    draw.text((40, 640), "A red fox trots through fresh snow at dawn  00:02.5", fill="white")
    return image


def timed(make, runs: int = 5):
    times, out = [], None
    for _ in range(runs):
        started = time.perf_counter()
        out = make()
        times.append(time.perf_counter() - started)
    return out, statistics.median(times)


def halfblock_bytes(image: Image.Image) -> tuple[int, float]:
    def make():
        fitted = graphics.fit(image, COLS, ROWS * 2)
        return halfblock_strips(fitted.tobytes(), *fitted.size)

    strips, took = timed(make)
    console = Console(file=io.StringIO(), color_system="truecolor", width=200)
    text = "".join(console._render_buffer(  # the bytes Rich writes for these segments
        [seg for strip in strips for seg in [*strip, Segment.line()]]))
    return len(text.encode()), took


def main() -> None:
    image = frame()
    print(f"a {COLS}x{ROWS}-cell picture of a 1280x720 frame\n")
    print("| way | cell | bytes once | encode (median of 5) |")
    print("|---|---|---|---|")
    size, took = halfblock_bytes(image)
    print(f"| half-blocks (truecolour SGR) | any | {size / 1024:.1f} KiB | {took * 1000:.1f} ms |")
    for name, (cw, ch) in CELLS.items():
        fitted = graphics.fit(image, COLS * cw, ROWS * ch)
        rows, took = timed(lambda f=fitted, c=ch: graphics.sixel_rows(f, c, 256))
        total = sum(len(r) for r in rows)
        print(f"| sixel, 256 colours | {name} | {total / 1024:.1f} KiB | {took * 1000:.0f} ms |")
    for name, (cw, ch) in CELLS.items():
        fitted = graphics.fit(image, COLS * cw, ROWS * ch)
        data, took = timed(lambda f=fitted: graphics.kitty_transmit(1, f))
        places = sum(len(graphics.kitty_place(1, r + 1, (0, r * ch, fitted.width, ch)))
                     for r in range(ROWS))
        print(f"| kitty: PNG once + {ROWS} placements | {name} | {len(data) / 1024:.1f} KiB "
              f"+ {places} B | {took * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
