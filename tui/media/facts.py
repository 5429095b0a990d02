"""Rules over a video's facts: did the user get what they paid for? Pure: no IO, no PyAV.

Only what the request says explicitly is compared: a resolution the user picked, the
duration (always part of a request) and audio switched on. A provider's defaults are not
known here, and a warning on every row would teach users to ignore it.
"""

from __future__ import annotations

import re
from typing import Any

from tui.jobs import Job, JobRequest, VideoFacts

TINY_VIDEO_BYTES = 100 * 1024  # moderated jobs "succeed" with clips smaller than this
DURATION_SLACK_S = 0.5  # providers round: a "5s" clip of 4.96 s is what was asked for
DARK_SHARE = 0.8  # this share of sampled frames nearly black: "mostly black"
FROZEN_MOTION = 0.5  # mean luma change (0-255) below which sampled frames are "the same"

_RESOLUTION = re.compile(r"^\s*(\d{3,4})\s*[pP]\s*$")


def asked_lines(resolution: str | None) -> int | None:
    """720 for "720p"/"720P"; None for anything else (a provider-specific size name)."""
    match = _RESOLUTION.match(resolution or "")
    return int(match.group(1)) if match else None


def shortfalls(request: JobRequest, video: VideoFacts) -> list[str]:
    """One short line per way the video falls short of its request (empty: as asked)."""
    out: list[str] = []
    lines = asked_lines(request.resolution)
    got = min(video.width, video.height)  # "720p" is the short side, portrait or not
    if lines is not None and got < lines:
        out.append(f"asked {lines}p, got {video.width}x{video.height}")
    try:
        seconds = request.duration_seconds
    except ValueError:
        seconds = None
    if seconds and video.duration_s < seconds - DURATION_SLACK_S:
        out.append(f"asked {seconds} s, got {video.duration_s:.1f} s")
    if request.audio is True and video.audio_codec is None:
        out.append("asked for audio, got none")
    return out


def moderation_hint(video: VideoFacts | None, size: int | None) -> str | None:
    """Why the clip may be a moderated stand-in (black, frozen or tiny), or None."""
    reasons: list[str] = []
    if video is not None:
        if video.dark >= DARK_SHARE:
            reasons.append("mostly black")
        elif video.motion is not None and video.motion < FROZEN_MOTION:
            reasons.append("frozen")
    if size is not None and size < TINY_VIDEO_BYTES:
        reasons.append("suspiciously small")
    if not reasons:
        return None
    return " and ".join(reasons) + ": possibly moderated"


def warnings(request: JobRequest, video: VideoFacts | None, size: int | None) -> list[str]:
    """Everything the row's ⚠ stands for, shortfalls first."""
    out = shortfalls(request, video) if video is not None else []
    hint = moderation_hint(video, size)
    if hint:
        out.append(hint)
    return out


def video_json(job: Job) -> dict[str, Any] | None:
    """The `video` object of `list --json` / `show`: the facts plus what the ⚠ stands for."""
    if job.video is None:
        return None
    return {**job.video.to_dict(), "warnings": warnings(job.request, job.video, job.bytes)}
