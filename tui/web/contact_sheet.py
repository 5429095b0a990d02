"""Contact sheets: the posters of an export in a grid, each labelled with its job number.

One PNG per `PER_SHEET` jobs, so a 1 000-job export makes pictures a viewer can open rather
than one image a few hundred megapixels tall.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

TILE = (320, 180)
LABEL_H = 24
GAP = 6
COLUMNS = 6
PER_SHEET = 48  # 6 x 8 tiles: 1 956 x 1 650 pixels
BACKGROUND = (21, 23, 28)
LABEL = (228, 230, 235)
PICK_COLOURS = {"star": (255, 194, 74), "reject": (255, 107, 107)}
PICK_GLYPHS = {"star": "*", "reject": "x"}  # the default bitmap font has no ★/✘


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=16)  # Pillow with FreeType: a scalable font
    except (TypeError, ValueError, OSError):
        return ImageFont.load_default()


def sheet_names(count: int) -> list[str]:
    sheets = max(1, -(-count // PER_SHEET))
    if sheets == 1:
        return ["contact-sheet.png"]
    return [f"contact-sheet-{n:02d}.png" for n in range(1, sheets + 1)]


def draw_sheets(tiles: Sequence[tuple[int, str | None, Path | None]], folder: Path
                ) -> list[Path]:
    """`tiles`: (job number, pick, poster PNG or None) in order. Returns the sheets written."""
    font = _font()
    written = []
    for name, start in zip(sheet_names(len(tiles)), range(0, max(1, len(tiles)), PER_SHEET),
                           strict=True):
        chunk = tiles[start:start + PER_SHEET]
        columns = min(COLUMNS, max(1, len(chunk)))
        rows = max(1, -(-len(chunk) // columns))
        width = columns * TILE[0] + (columns + 1) * GAP
        height = rows * (TILE[1] + LABEL_H) + (rows + 1) * GAP
        sheet = Image.new("RGB", (width, height), BACKGROUND)
        draw = ImageDraw.Draw(sheet)
        for n, (job_id, pick, poster) in enumerate(chunk):
            x = GAP + (n % columns) * (TILE[0] + GAP)
            y = GAP + (n // columns) * (TILE[1] + LABEL_H + GAP)
            if poster is not None:
                with Image.open(poster) as picture:
                    frame = picture.convert("RGB")
                    frame.thumbnail(TILE)
                    sheet.paste(frame, (x + (TILE[0] - frame.width) // 2,
                                        y + (TILE[1] - frame.height) // 2))
            else:
                draw.rectangle((x, y, x + TILE[0] - 1, y + TILE[1] - 1), outline=LABEL)
            label = f"#{job_id}" + (f"  {PICK_GLYPHS[pick]} {pick}" if pick in PICK_GLYPHS
                                    else "")
            draw.text((x + 2, y + TILE[1] + 3), label, font=font,
                      fill=PICK_COLOURS.get(pick or "", LABEL))
        path = folder / name
        sheet.save(path, format="PNG")
        written.append(path)
    return written
