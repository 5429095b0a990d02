"""Pictures of a video: the thumbnail (a frame from the middle) and small frames to play.

Blocking (PyAV decodes here): callers run these in a worker thread. Thumbnails are cached
as PNG files beside the history (<home>/thumbs/ID.png) and are written atomically, so a
reader never sees half a picture.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.media.probe import UndecodableError

THUMB_MAX = (320, 180)  # a thumbnail's box in pixels; kitty/sixel draw it at this detail
PLAY_FPS_CAP = 12.0  # what a terminal (and an SSH link) can carry in half-blocks


def thumbnail(video: Path, dest: Path) -> Path:
    """Write (once) and return a PNG of the frame in the middle of `video`.

    The cached file is reused while it is newer than the video. Raises
    UndecodableError when no frame can be read.
    """
    try:
        if dest.stat().st_mtime >= video.stat().st_mtime:
            return dest
    except FileNotFoundError:
        pass
    image = middle_frame(video)
    image.thumbnail(THUMB_MAX)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # unique per thread: the detail pane and the gallery may make the same picture at once
    part = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.part")
    image.save(part, format="PNG")
    os.replace(part, dest)
    return dest


def middle_frame(video: Path) -> Any:
    """The frame halfway through `video` as a Pillow image."""
    import av

    try:
        with av.open(str(video), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise UndecodableError("decoding failed: the file has no video stream")
            stream = container.streams.video[0]
            target = None
            if stream.duration and stream.time_base:
                target = (stream.start_time or 0) + stream.duration // 2
                container.seek(target, stream=stream, backward=True, any_frame=False)
            frame = None
            for count, decoded in enumerate(container.decode(stream), 1):
                frame = decoded
                if target is None or decoded.pts is None or decoded.pts >= target or count > 96:
                    break
            if frame is None:
                raise UndecodableError("decoding failed: no frame of the video decodes")
            return frame.to_image()
    except av.FFmpegError as exc:
        raise UndecodableError(f"decoding failed: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class Frame:
    """One frame to show: rgb24 pixels, `width` x `height`, and when (s) it is due."""

    index: int
    at: float
    width: int
    height: int
    rgb: bytes


def play_rate(fps: float | None) -> float:
    """Frames per second to show: the clip's own rate, capped."""
    return min(PLAY_FPS_CAP, fps) if fps and fps > 0 else PLAY_FPS_CAP


def frames(video: Path, width: int, height: int, *, fps: float | None = None,
           stop: Callable[[], bool] = lambda: False) -> Iterator[Frame]:
    """Decode `video` start to end, scaled to `width` x `height` pixels, thinned to at most
    `play_rate(fps)` frames a second. `stop()` is asked between frames (esc pressed)."""
    import av

    with av.open(str(video), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = play_rate(fps or float(stream.average_rate or 0))
        step = 1.0 / rate
        next_at = 0.0
        index = 0
        for decoded in container.decode(stream):
            if stop():
                return
            at = float(decoded.time or 0.0)
            if at + 1e-6 < next_at:
                continue  # thinned out: the clip is faster than the terminal can show
            next_at = at + step
            small = decoded.reformat(width=width, height=height, format="rgb24")
            plane = small.planes[0]
            data = bytes(plane)
            row = width * 3
            if plane.line_size != row:  # drop the decoder's line padding
                data = b"".join(data[y * plane.line_size: y * plane.line_size + row]
                                for y in range(height))
            yield Frame(index, at, width, height, data)
            index += 1


def paced(source: Iterator[Frame], *, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[Frame]:
    """Yield frames when they are due; frames already late are dropped, not shown late."""
    start = clock()
    for frame in source:
        delay = start + frame.at - clock()
        if delay > 0:
            sleep(delay)
        elif delay < -0.25:
            continue  # the decoder fell behind: skip to catch up with the clock
        yield frame
