"""Turning `--image PATH_OR_URL` into something a provider can fetch, checked first."""

from __future__ import annotations

import base64
import stat
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
    shown = value if len(value) <= 120 else value[:117] + "..."
    # A path that cannot even be looked at (a NUL byte, too long, not UTF-8) is refused
    # here with the reason, not left to raise from deep inside pathlib.
    try:
        path = Path(value).expanduser()
        info = path.stat()
    except FileNotFoundError:
        raise ValidationError(f"image {shown}: no such file (give a path or an http(s) URL)"
                              ) from None
    except (OSError, ValueError, RuntimeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ValidationError(f"image {shown!r}: cannot read it ({reason})") from None
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or a device would block or never end: only regular files are read.
        raise ValidationError(f"image {shown}: not a file")
    if info.st_size > max_bytes:
        raise ValidationError(
            f"image {shown} is {info.st_size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} "
            "MB (resize it or give a URL)"
        )
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)  # bounded even if the file grew since stat()
    except OSError as err:
        raise ValidationError(f"image {shown}: cannot read it ({err.strerror or err})"
                              ) from None
    if len(data) > max_bytes:
        raise ValidationError(f"image {shown} is larger than {max_bytes / 1e6:.0f} MB")
    mime = sniff_image_type(data[:16])
    if mime is None:
        raise ValidationError(f"image {shown}: not a PNG, JPEG, WebP or GIF file")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
