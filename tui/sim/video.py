"""Real, playable MP4 clips for the simulator.

Each clip shows scrolling colour bars, the start of the prompt, the job id and a frame
counter, drawn with a tiny built-in 5x7 bitmap font. Film grain seeded by the job id makes
every file's bytes unique and keeps normal clips above 100 KB: clients treat anything
smaller as a moderated ("black") result, so `tiny=True` drops the grain to produce one.
`dark=True` draws a nearly black clip (a moderated stand-in of normal size), `audio=True`
adds a silent AAC track, and `spoil=True` keeps the boxes but makes the frames undecodable.

Frames are drawn with Pillow (which textual-image brings for thumbnails anyway), so the
default install needs no numpy.
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

# 5x7 glyphs, one 5-bit row per entry, most significant bit on the left.
_GLYPHS: dict[str, tuple[int, ...]] = {
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E),
    "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F),
    "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02),
    "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E),
    "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E),
    "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    "A": (0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    " ": (0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
    ".": (0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C),
    ",": (0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08),
    ":": (0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00),
    ";": (0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08),
    "!": (0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04),
    "?": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04),
    "-": (0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00),
    "_": (0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F),
    "/": (0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00),
    "'": (0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00),
    '"': (0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00),
    "(": (0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02),
    ")": (0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08),
    "[": (0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E),
    "]": (0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E),
    "#": (0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A),
    "+": (0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00),
    "=": (0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00),
    "%": (0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03),
    "&": (0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D),
    "*": (0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00),
    "<": (0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02),
    ">": (0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08),
    "@": (0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E),
    "$": (0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04),
}
GLYPH_W, GLYPH_H, ADVANCE = 5, 7, 6
_UNKNOWN = "?"

# SMPTE-like bars: white, yellow, cyan, green, magenta, red, blue, black.
_BAR_COLOURS = (
    (235, 235, 235),
    (235, 235, 16),
    (16, 235, 235),
    (16, 235, 16),
    (235, 16, 235),
    (235, 16, 16),
    (16, 16, 235),
    (16, 16, 16),
)

PROMPT_CHARS = 40
BAND = 20  # height of the black text bands at top and bottom
# Grain amplitude and quantiser, tuned so a 2 s 320x180 clip lands around 250 KB; tiny
# clips get no grain and a coarse quantiser, to stay far under 100 KB.
GRAIN = 12
CRF, TINY_CRF = 26, 34
GRAIN_PATCH = (320, 140)
AUDIO_RATE = 24_000
DARK_GREY = (12, 12, 12)
# A grain byte n becomes n * (2 * GRAIN + 1) // 256: 0 .. 2 * GRAIN, centred by the offset.
_GRAIN_TABLE = [v * (2 * GRAIN + 1) // 256 for v in range(256)]


def text_mask(text: str, scale: int = 1) -> Image.Image:
    """A mode "L" mask (255 = ink) of `text` in upper case, 7*scale rows high and 6*scale
    columns per character; unknown characters are drawn as '?'."""
    text = text.upper()
    width = len(text) * ADVANCE
    rows = bytearray(GLYPH_H * width)
    for i, ch in enumerate(text):
        glyph = _GLYPHS.get(ch, _GLYPHS[_UNKNOWN])
        for y, bits in enumerate(glyph):
            base = y * width + i * ADVANCE
            for x in range(GLYPH_W):
                if (bits >> (4 - x)) & 1:
                    rows[base + x] = 255
    mask = Image.frombytes("L", (width, GLYPH_H), bytes(rows))
    if scale > 1 and width:
        mask = mask.resize((width * scale, GLYPH_H * scale), Image.Resampling.NEAREST)
    return mask


def _stamp(img: Image.Image, text: str, x: int, y: int, scale: int = 1) -> None:
    """Draw white text into `img` in place (Pillow clips it to the image)."""
    mask = text_mask(text, scale)
    if mask.width:
        img.paste((255, 255, 255), (x, y, x + mask.width, y + mask.height), mask)


def _bars(width: int, height: int) -> Image.Image:
    """Colour bars of `height` rows, one period wide across the frame (rolls seamlessly)."""
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    n = len(_BAR_COLOURS)
    for i, colour in enumerate(_BAR_COLOURS):
        x0, x1 = (i * width) // n, ((i + 1) * width) // n
        draw.rectangle((x0, 0, x1 - 1, height - 1), fill=colour)
    return img


def _seed_for(job_id: str) -> int:
    return zlib.crc32(job_id.encode("utf-8"))


class _FramePainter:
    """Draws frame i: the static parts are built once, only bars, grain and counter move."""

    def __init__(
        self, *, prompt: str, job_id: str, width: int, height: int, frames: int, tiny: bool,
        dark: bool = False,
    ):
        self.width, self.height, self.frames = width, height, frames
        self.tiny, self.dark = tiny, dark
        self.rng = random.Random(_seed_for(job_id))
        mid_h = height - 2 * BAND
        self.mid_size = (width, mid_h)
        # dark: a dim grey under the grain, so the clip is nearly black yet of normal size
        self.bars = Image.new("RGB", self.mid_size, DARK_GREY) if dark else _bars(width, mid_h)
        self.top = Image.new("RGB", (width, BAND))
        self.bottom = Image.new("RGB", (width, BAND))
        if not dark:  # a moderated stand-in shows nothing at all
            _stamp(self.top, " ".join(prompt.split())[:PROMPT_CHARS], 4, (BAND - GLYPH_H) // 2)
            _stamp(self.bottom, f"JOB {job_id}"[:PROMPT_CHARS], 4, (BAND - GLYPH_H) // 2)
        self.step = max(1, width // 96)
        # Grain covers at most a 320x140 patch: enough for unique bytes and a normal size,
        # while a 1080p clip stays cheap to encode and small to serve.
        self.grain_size = (min(width, GRAIN_PATCH[0]), min(mid_h, GRAIN_PATCH[1]))

    def _grain(self) -> Image.Image:
        w, h = self.grain_size
        noise = Image.frombytes("L", (w, h), self.rng.randbytes(w * h)).point(_GRAIN_TABLE)
        return Image.merge("RGB", (noise, noise, noise))

    def frame(self, i: int) -> Image.Image:
        img = Image.new("RGB", (self.width, self.height))
        img.paste(self.top, (0, 0))
        img.paste(self.bottom, (0, self.height - BAND))
        mid = self.bars if self.dark else ImageChops.offset(self.bars, i * self.step, 0)
        img.paste(mid, (0, BAND))
        if not self.tiny:
            # (bars + grain) - GRAIN, clipped to 0..255: grain of +-GRAIN around the bars
            box = (0, BAND, self.grain_size[0], BAND + self.grain_size[1])
            img.paste(ImageChops.add(img.crop(box), self._grain(), scale=1.0, offset=-GRAIN),
                      box)
        if not self.dark:
            counter = f"{i + 1:03d}/{self.frames:03d}"
            x = self.width - len(counter) * ADVANCE * 2 - 4
            # a black box behind the counter keeps it legible on the white and yellow bars
            ImageDraw.Draw(img).rectangle(
                (x - 2, BAND + 2, self.width - 3, BAND + 2 * GLYPH_H + 5), fill=(0, 0, 0))
            _stamp(img, counter, x, BAND + 4, scale=2)
        return img


def render_clip(
    path: Path,
    *,
    prompt: str,
    job_id: str,
    seconds: float,
    width: int = 320,
    height: int = 180,
    fps: int = 24,
    tiny: bool = False,
    dark: bool = False,
    audio: bool = False,
    spoil: bool = False,
) -> tuple[int, str]:
    """Encode an H.264 MP4 at `path` (atomically) and return (size in bytes, sha256 hex)."""
    import av  # imported here: PyAV is slow to import and only the simulator needs it

    frames = max(1, round(seconds * fps))
    painter = _FramePainter(
        prompt=prompt, job_id=job_id, width=width, height=height, frames=frames, tiny=tiny,
        dark=dark,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with av.open(
        str(part), mode="w", format="mp4", options={"movflags": "+faststart"}
    ) as container:
        container.metadata["comment"] = f"wan-tui simulator job {job_id}"
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": str(TINY_CRF if tiny else CRF)}
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono") if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_image(painter.frame(i))
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            _silence(av, container, sound, frames / fps)
    if spoil:
        _spoil(part)
    os.replace(part, path)
    return path.stat().st_size, file_sha256(path)


def _silence(av, container, stream, seconds: float) -> None:
    """A silent track as long as the video: an audio stream a player would find."""
    chunk = 1024
    total = round(seconds * AUDIO_RATE)
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        frame = av.AudioFrame(format="s16", layout="mono", samples=n)
        frame.planes[0].update(bytes(frame.planes[0].buffer_size))
        frame.sample_rate, frame.pts = AUDIO_RATE, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _spoil(path: Path) -> None:
    """Overwrite the media data with a repeating pattern, in place: every box still tiles
    the file (a container check passes) but no frame decodes."""
    with path.open("r+b") as fh:
        size = path.stat().st_size
        pos = 0
        while pos < size:
            fh.seek(pos)
            box_size, box_type = struct.unpack(">I4s", fh.read(8))
            header = 8
            if box_size == 1:
                box_size, header = struct.unpack(">Q", fh.read(8))[0], 16
            elif box_size == 0:
                box_size = size - pos
            if box_type == b"mdat":
                fh.seek(pos + header)
                fh.write(b"\xde\xad\xbe\xef" * ((box_size - header) // 4))
            pos += box_size


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()
