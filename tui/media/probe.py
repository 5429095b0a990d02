"""Verify a video by decoding it, and read its facts.

A file whose MP4 boxes tile it can still hold video no decoder can read. `probe` opens the
file with PyAV, reads its streams, decodes the first frame, a few sampled frames and the last
frame, and returns the video's facts (tui.jobs.VideoFacts). It decodes only what the check
needs: demuxing reads the index (moov) once, every sample is a seek to the keyframe before it
plus the frames up to it (bounded), so time and memory stay small for a 1 GB file (figures:
python -m tui.bench.media). Blocking: callers run it in a worker thread (asyncio.to_thread).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tui.errors import WanError
from tui.jobs import VideoFacts

# Where the middle samples are taken, as fractions of the duration. With the first and last
# frames that makes five looks at the clip for the "mostly black or frozen" hint.
SAMPLE_AT = (0.25, 0.5, 0.75)
# At most this many frames are decoded after a seek to reach a sample: a file with one
# keyframe per minute must not turn a sample into decoding the whole file.
MAX_FRAMES_PER_SEEK = 96
# The tail is decoded from the last keyframe to the end (that is what proves the end is
# readable); a pathological GOP is cut off after this many frames.
MAX_TAIL_FRAMES = 1500
# Sampled frames are measured at this size (grey): 2 304 values, cheap in plain Python.
STAT_W, STAT_H = 64, 36
DARK_LUMA = 28  # mean luma (0-255, video range starts at 16) under which a frame is "black"
DARK_SPREAD = 12  # ... when its pixels also barely vary (a dark scene has highlights)


class UndecodableError(WanError):
    """The file is not a video a player could show. The message is one line for a human."""


def probe(path: Path) -> VideoFacts:
    """Decode the first, sampled and last frames of `path`; return its facts.

    Raises UndecodableError when the file cannot be opened as a video, has no video
    stream, or its frames do not decode.
    """
    import av  # slow to import; only needed once a file is on disk

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, ValueError, UnicodeDecodeError) as exc:
        raise UndecodableError(f"decoding failed: cannot open it as a video ({_why(exc)})") from exc
    try:
        return _probe(container, path.stat().st_size)
    except (av.FFmpegError, ValueError, MemoryError) as exc:
        raise UndecodableError(f"decoding failed: {_why(exc)}") from exc
    finally:
        container.close()


def _why(exc: BaseException) -> str:
    # FFmpeg errors read "[Errno N] Invalid data found ...: 'avcodec_send_packet()'": the
    # middle part is what a user can act on.
    text = getattr(exc, "strerror", None) or str(exc)
    text = " ".join(str(text).split()) or type(exc).__name__
    return text[:160]


def _probe(container: Any, size: int) -> VideoFacts:
    if not container.streams.video:
        raise UndecodableError("decoding failed: the file has no video stream")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    duration_s = _duration_s(container, stream)
    fps = float(stream.average_rate or stream.guessed_rate or 0) or None

    first = next(_frames(container, stream), None)
    if first is None:
        raise UndecodableError("decoding failed: no frame of the video decodes")
    width, height = first.width or ctx.width, first.height or ctx.height
    samples = [_stats(first)]

    start = stream.start_time or 0
    if duration_s and stream.time_base:
        span = int(duration_s / stream.time_base)
        for frac in SAMPLE_AT:
            frame = _frame_at(container, stream, start + int(span * frac))
            if frame is None:
                raise UndecodableError(
                    f"decoding failed: nothing decodes at {frac:.0%} of the video")
            samples.append(_stats(frame))
        end = start + span
    else:
        end = None
    last = _last_frame(container, stream, end)
    if last is None:
        raise UndecodableError("decoding failed: the end of the video does not decode")
    samples.append(_stats(last))
    if not duration_s and last.time is not None:
        duration_s = float(last.time) + (1 / fps if fps else 0)

    bitrate = container.bit_rate or (size * 8 / duration_s if duration_s else None)
    return VideoFacts(
        width=int(width),
        height=int(height),
        duration_s=round(float(duration_s or 0.0), 3),
        fps=round(fps or 0.0, 3),
        video_codec=ctx.name,
        audio_codec=audio,
        bitrate=int(bitrate) if bitrate else None,
        dark=round(sum(s.dark for s in samples) / len(samples), 3),
        motion=_motion(samples),
    )


def _duration_s(container: Any, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _frames(container: Any, stream: Any) -> Iterator[Any]:
    yield from container.decode(stream)


def _frame_at(container: Any, stream: Any, pts: int) -> Any | None:
    """The first frame at or after `pts` (or the furthest reached within the bound)."""
    container.seek(pts, stream=stream, backward=True, any_frame=False)
    reached = None
    for count, frame in enumerate(_frames(container, stream), 1):
        reached = frame
        if frame.pts is None or frame.pts >= pts or count >= MAX_FRAMES_PER_SEEK:
            break
    return reached


def _last_frame(container: Any, stream: Any, end: int | None) -> Any | None:
    if end is not None:
        container.seek(end, stream=stream, backward=True, any_frame=False)
    last = None
    for count, frame in enumerate(_frames(container, stream), 1):
        last = frame
        if count >= MAX_TAIL_FRAMES:
            break
    return last


class _Sample:
    __slots__ = ("dark", "luma", "pts")

    def __init__(self, luma: bytes, pts: Any) -> None:
        self.luma = luma
        self.pts = pts
        n = len(luma)
        mean = sum(luma) / n
        spread = math.sqrt(max(0.0, sum(v * v for v in luma) / n - mean * mean))
        self.dark = 1.0 if mean < DARK_LUMA and spread < DARK_SPREAD else 0.0


def _stats(frame: Any) -> _Sample:
    grey = frame.reformat(width=STAT_W, height=STAT_H, format="gray")
    plane = grey.planes[0]
    data = bytes(plane)
    stride = plane.line_size
    luma = b"".join(data[row * stride : row * stride + STAT_W] for row in range(STAT_H))
    pts = frame.pts if frame.pts is not None else frame.time
    return _Sample(luma, pts)


def _motion(samples: list[_Sample]) -> float | None:
    """The largest mean absolute luma change between two distinct sampled frames.

    Frames with the same timestamp (a short clip's samples can land on one frame) say
    nothing about motion; with fewer than two distinct frames the answer is unknown.
    """
    distinct: dict[Any, _Sample] = {}
    for sample in samples:
        distinct.setdefault(sample.pts, sample)
    frames = list(distinct.values())
    if len(frames) < 2:
        return None
    n = STAT_W * STAT_H
    best = 0.0
    for a, b in zip(frames, frames[1:], strict=False):
        best = max(best, sum(abs(x - y) for x, y in zip(a.luma, b.luma, strict=True)) / n)
    return round(best, 2)
