"""Real, playable MP4 clips for the simulator.

Each clip shows scrolling colour bars, the start of the prompt, the job id and a frame
counter, drawn with a tiny built-in 5x7 bitmap font. Film grain seeded by the job id makes
every file's bytes unique and keeps normal clips above 100 KB: clients treat anything
smaller as a moderated ("black") result, so `tiny=True` drops the grain to produce one.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

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

# The glyph bitmaps as one boolean array, so text is a fancy-index instead of a loop.
_CHARS = "".join(_GLYPHS)
_INDEX = {ch: i for i, ch in enumerate(_CHARS)}
_BITMAPS = np.array(
    [
        [[(row >> (4 - col)) & 1 for col in range(GLYPH_W)] for row in rows]
        for rows in _GLYPHS.values()
    ],
    dtype=bool,
)

# SMPTE-like bars: white, yellow, cyan, green, magenta, red, blue, black.
_BAR_COLOURS = np.array(
    [
        [235, 235, 235],
        [235, 235, 16],
        [16, 235, 235],
        [16, 235, 16],
        [235, 16, 235],
        [235, 16, 16],
        [16, 16, 235],
        [16, 16, 16],
    ],
    dtype=np.uint8,
)

PROMPT_CHARS = 40
BAND = 20  # height of the black text bands at top and bottom
# Grain amplitude and quantiser, tuned so a 2 s 320x180 clip lands around 250 KB; tiny
# clips get no grain and a coarse quantiser, to stay far under 100 KB.
GRAIN = 12
CRF, TINY_CRF = 26, 34


def text_mask(text: str, scale: int = 1) -> np.ndarray:
    """Boolean (7*scale, 6*len*scale) mask of `text` in upper case; unknown chars are '?'."""
    text = text.upper()
    if not text:
        return np.zeros((GLYPH_H * scale, 0), dtype=bool)
    idx = [_INDEX.get(ch, _INDEX["?"]) for ch in text]
    glyphs = np.zeros((len(idx), GLYPH_H, ADVANCE), dtype=bool)
    glyphs[:, :, :GLYPH_W] = _BITMAPS[idx]
    mask = glyphs.transpose(1, 0, 2).reshape(GLYPH_H, len(idx) * ADVANCE)
    if scale > 1:
        mask = mask.repeat(scale, axis=0).repeat(scale, axis=1)
    return mask


def _stamp(img: np.ndarray, text: str, x: int, y: int, scale: int = 1) -> None:
    """Draw white text into `img` (H, W, 3) in place, clipped to the image."""
    mask = text_mask(text, scale)
    h = min(mask.shape[0], img.shape[0] - y)
    w = min(mask.shape[1], img.shape[1] - x)
    if h <= 0 or w <= 0:
        return
    region = img[y : y + h, x : x + w]
    region[mask[:h, :w]] = 255


def _bars(width: int, height: int) -> np.ndarray:
    """Colour bars of `height` rows, one period wide across the frame (rolls seamlessly)."""
    cols = (np.arange(width) * len(_BAR_COLOURS)) // width
    return np.broadcast_to(_BAR_COLOURS[cols], (height, width, 3)).copy()


def _seed_for(job_id: str) -> int:
    return zlib.crc32(job_id.encode("utf-8"))


class _FramePainter:
    """Draws frame i: the static parts are built once, only bars, grain and counter move."""

    def __init__(
        self, *, prompt: str, job_id: str, width: int, height: int, frames: int, tiny: bool
    ):
        self.width, self.height, self.frames = width, height, frames
        self.tiny = tiny
        self.rng = np.random.default_rng(_seed_for(job_id))
        self.bars = _bars(width, height - 2 * BAND)
        self.top = np.zeros((BAND, width, 3), dtype=np.uint8)
        _stamp(self.top, " ".join(prompt.split())[:PROMPT_CHARS], 4, (BAND - GLYPH_H) // 2)
        self.bottom = np.zeros((BAND, width, 3), dtype=np.uint8)
        _stamp(self.bottom, f"JOB {job_id}"[:PROMPT_CHARS], 4, (BAND - GLYPH_H) // 2)
        self.step = max(1, width // 96)

    def frame(self, i: int) -> np.ndarray:
        img = np.empty((self.height, self.width, 3), dtype=np.uint8)
        img[:BAND] = self.top
        img[self.height - BAND :] = self.bottom
        mid = np.roll(self.bars, i * self.step, axis=1)
        if not self.tiny:
            grain = self.rng.integers(-GRAIN, GRAIN + 1, size=mid.shape[:2], dtype=np.int16)
            mid = np.clip(mid.astype(np.int16) + grain[:, :, None], 0, 255).astype(np.uint8)
        img[BAND : self.height - BAND] = mid
        counter = f"{i + 1:03d}/{self.frames:03d}"
        x = self.width - len(counter) * ADVANCE * 2 - 4
        # a black box behind the counter keeps it legible on the white and yellow bars
        img[BAND + 2 : BAND + 2 * GLYPH_H + 6, x - 2 : self.width - 2] = 0
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
) -> tuple[int, str]:
    """Encode an H.264 MP4 at `path` (atomically) and return (size in bytes, sha256 hex)."""
    import av  # imported here: PyAV is slow to import and only the simulator needs it

    frames = max(1, round(seconds * fps))
    painter = _FramePainter(
        prompt=prompt, job_id=job_id, width=width, height=height, frames=frames, tiny=tiny
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
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(painter.frame(i), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    os.replace(part, path)
    return path.stat().st_size, file_sha256(path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()
