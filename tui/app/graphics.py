"""The escape sequences that draw a picture with sixel or kitty's graphics protocol.

Pure functions of a Pillow image: no Textual, no terminal. `tui/app/picture_layer.py`
decides when and where they are written.
"""

from __future__ import annotations

import base64
import io
import re

from PIL import Image

# A sixel character is 63 + the six bits of a column of a band; a run of 4 or more of the
# same character is shorter as "!<count><char>".
_SIXEL_CHARS = bytes((63 + n) & 0xFF for n in range(256))
_RUN = re.compile(rb"(.)\1{3,}")


def _run(match: re.Match[bytes]) -> bytes:
    return b"!%d%c" % (len(match.group(0)), match.group(1)[0])


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """`image` scaled to fit `width` x `height` pixels, its shape kept."""
    w, h = image.size
    scale = min(width / max(1, w), height / max(1, h))
    size = (max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale))))
    return image.convert("RGB").resize(size, Image.Resampling.BILINEAR)


def sixel_rows(image: Image.Image, cell_height: int, colors: int = 256) -> list[str]:
    """`image` as one sixel sequence per row of cells (`cell_height` pixels each), all with
    one palette of at most `colors` registers.

    A row at a time, so that a picture partly covered (a toast, the edge of a scrolled
    list) is drawn as the rows that show, without encoding it again. P2=1: pixels a row
    does not set keep what is behind; the raster attributes give its exact size.
    """
    quantized = image.convert("RGB").quantize(colors=max(2, min(256, colors)),
                                              method=Image.Quantize.MEDIANCUT,
                                              dither=Image.Dither.NONE)
    width, height = quantized.size
    palette = quantized.getpalette() or []
    rows = []
    for top in range(0, height, cell_height):
        part = quantized.crop((0, top, width, min(height, top + cell_height)))
        rows.append(_sixel(part.tobytes(), width, part.size[1], palette))
    return rows


def _sixel(pixels: bytes, width: int, height: int, palette: list[int]) -> str:
    out = [f'\x1bP0;1;0q"1;1;{width};{height}']
    for index in sorted(set(pixels)):
        r, g, b = palette[index * 3:index * 3 + 3]
        out.append(f"#{index};2;{r * 100 // 255};{g * 100 // 255};{b * 100 // 255}")
    body: list[bytes] = []
    for top in range(0, height, 6):
        masks: dict[int, bytearray] = {}
        for r in range(min(6, height - top)):
            bit = 1 << r
            row = pixels[(top + r) * width:(top + r + 1) * width]
            for x, colour in enumerate(row):
                mask = masks.get(colour)
                if mask is None:
                    mask = masks[colour] = bytearray(width)
                mask[x] |= bit
        lines = []
        for colour, mask in masks.items():
            chars = bytes(mask).translate(_SIXEL_CHARS).rstrip(b"?")
            lines.append(b"#%d" % colour + _RUN.sub(_run, chars))
        body.append(b"$".join(lines))
    out.append(b"-".join(body).decode("ascii"))
    out.append("\x1b\\")
    return "".join(out)


def _kitty(keys: str, payload: str = "") -> str:
    return f"\x1b_G{keys};{payload}\x1b\\" if payload else f"\x1b_G{keys}\x1b\\"


def kitty_transmit(image_id: int, image: Image.Image) -> str:
    """Send `image` (as PNG, in chunks of 4096) to be kept by the terminal as `image_id`,
    without showing it; q=2: the terminal answers nothing (the app's input would get it)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG", compress_level=6)
    data = base64.standard_b64encode(buf.getvalue()).decode("ascii")
    chunks = [data[n:n + 4096] for n in range(0, len(data), 4096)] or [""]
    out = []
    for n, chunk in enumerate(chunks):
        more = 1 if n < len(chunks) - 1 else 0
        keys = f"a=t,f=100,i={image_id},q=2,m={more}" if n == 0 else f"m={more},q=2"
        out.append(_kitty(keys, chunk))
    return "".join(out)


def kitty_place(image_id: int, placement: int, crop: tuple[int, int, int, int]) -> str:
    """Show the part `crop` (x, y, w, h in pixels) of a sent image at the cursor, a pixel
    for a pixel; C=1 leaves the cursor where it is (nothing scrolls)."""
    x, y, w, h = crop
    return _kitty(f"a=p,i={image_id},p={placement},x={x},y={y},w={w},h={h},C=1,q=2")


def kitty_unplace(image_id: int) -> str:
    """Take every placement of the image off the screen (its data stays)."""
    return _kitty(f"a=d,d=i,i={image_id},q=2")


def kitty_forget(image_id: int) -> str:
    """Delete the image's placements and its data from the terminal."""
    return _kitty(f"a=d,d=I,i={image_id},q=2")
