"""Turning `--image PATH_OR_URL` into something a provider can fetch, checked first."""

from __future__ import annotations

import base64
from pathlib import Path

from tui.jobs import ValidationError

# Venice takes bodies up to ~35 MB; base64 grows data by 4/3, so keep raw images well under.
MAX_IMAGE_BYTES = 20 * 1024 * 1024

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image_type(head: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_argument(value: str, max_bytes: int = MAX_IMAGE_BYTES) -> str:
    """A URL passes through; a local file becomes a data URL after checks."""
    if value.startswith(("http://", "https://", "data:image/")):
        return value
    path = Path(value).expanduser()
    if not path.exists():
        raise ValidationError(f"image {value}: no such file (give a path or an http(s) URL)")
    if not path.is_file():
        raise ValidationError(f"image {value}: not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise ValidationError(
            f"image {value} is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB "
            "(resize it or give a URL)"
        )
    with path.open("rb") as fh:
        data = fh.read()
    mime = sniff_image_type(data[:16])
    if mime is None:
        raise ValidationError(f"image {value}: not a PNG, JPEG, WebP or GIF file")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
