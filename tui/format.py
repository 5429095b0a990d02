"""Human text for jobs, shared by the CLI and the dashboard."""

from __future__ import annotations

import humanize

from tui.jobs import PICK_GLYPHS, Job, JobState, VideoFacts, progress_of
from tui.whereabouts import Follower, file_elsewhere

GLYPHS = {
    JobState.PENDING: "·",
    JobState.SUBMITTING: "↑",
    JobState.QUEUED: "○",
    JobState.PROCESSING: "◐",
    JobState.DOWNLOADING: "↓",
    JobState.DONE: "✔",
    JobState.FAILED: "✘",
    # Narrow everywhere: ⌛ is two cells wide in some terminals and one in others (the
    # rows after it shifted), and a missing glyph in common fonts.
    JobState.EXPIRED: "◷",
    JobState.CANCELLED: "⊘",
    JobState.UNKNOWN: "?",
}


def excerpt(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def money(usd: float | None, estimate: bool = False) -> str:
    if usd is None:
        return "–"
    return f"~${usd:.2f}" if estimate else f"${usd:.2f}"


def size(num: int | None) -> str:
    return humanize.naturalsize(num, binary=True) if num else "–"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def elapsed_of(job: Job, now: float) -> float:
    start = job.submitted_at or job.created_at
    # A job that ended keeps the time it ran: its end, or its last change (a cancelled job
    # has no finished_at), never a clock that goes on ticking.
    end = (job.finished_at or job.updated_at) if job.state.final else now
    return max(0.0, end - start)


def progress_text(job: Job, now: float) -> str:
    """"42% ETA 1m10s", "overdue 20s", "done" -- never a fake 100 %."""
    if job.state == JobState.DONE:
        return "done"
    if job.state in (JobState.PENDING, JobState.SUBMITTING):
        return "waiting"
    if job.state.final:
        return str(job.state)
    if job.state == JobState.DOWNLOADING:
        return "downloading"
    elapsed = elapsed_of(job, now)
    frac, overdue = progress_of(elapsed, job.estimate_s)
    if frac is None:  # no estimate yet: say how long it has been where it is
        where = "queued" if job.state == JobState.QUEUED else "running"
        return f"{where} {duration(elapsed)}"
    if overdue:
        return f"overdue {duration(elapsed - (job.estimate_s or 0))}"
    return f"{int(frac * 100)}% ETA {duration((job.estimate_s or 0) - elapsed)}"


def follower_text(holder: Follower) -> str:
    """`alpha, lease 24s left`: which engine follows a job on a team's history."""
    left = holder.lease_left_s
    if left is None:
        return holder.name
    if left >= 0:
        return f"{holder.name}, lease {duration(left)} left"
    return f"{holder.name}, lease ran out {duration(-left)} ago: another engine adopts the job"


def trouble_text(errors: int, last: str) -> str:
    """Why a job's polls fail, in short: `3× HTTP 500: internal error`."""
    return f"{errors}× {excerpt(last, 60)}"


def job_line(job: Job, now: float, detail: str = "") -> str:
    parts = [
        f"#{job.id}",
        f"{GLYPHS[job.state]} {job.state.value}"
        + (f" {PICK_GLYPHS[job.pick]}" if job.pick in PICK_GLYPHS else ""),
        f"{job.provider}/{job.model}",
        f'"{excerpt(job.prompt, 40)}"',
    ]
    if job.state == JobState.DONE and job.file:
        where = file_elsewhere(job)  # another machine's disk: say whose, not a path here
        parts.append(f"{size(job.bytes)} → "
                     f"{job.file if where is None else f'{where.host}:{where.path}'}")
    elif job.state.active:
        parts.append(progress_text(job, now))
    if detail:
        parts.append(f"— {excerpt(detail, 160)}")
    return "  ".join(parts)


# ---------------------------------------------------------------- dashboard helpers

_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(fraction: float | None, width: int) -> str:
    """A text progress bar in eighth blocks; an unknown fraction is an empty track."""
    if width <= 0:
        return ""
    if fraction is None:
        return "░" * width
    cells = max(0.0, min(1.0, fraction)) * width
    full = int(cells)
    part = _EIGHTHS[int((cells - full) * 8)] if full < width else ""
    text = "█" * full + part.strip()
    return text + "░" * (width - len(text))


def shape(job: Job) -> str:
    """Duration and resolution as asked: "5s 720p" ("5s" when the model's default)."""
    req = job.request
    return f"{req.duration} {req.resolution}" if req.resolution else req.duration


def cost_of(job: Job) -> str:
    """What was charged, or the quote shown before spending (marked as an estimate)."""
    if job.cost_usd is not None:
        return money(job.cost_usd, job.cost_is_estimate)
    return money(job.quote_usd, True) if job.quote_usd is not None else "–"


def ago(ts: float | None, now: float) -> str:
    """"3 minutes ago" against an explicit now (deterministic under a fixed clock)."""
    if ts is None:
        return "–"
    from datetime import datetime

    return humanize.naturaltime(datetime.fromtimestamp(ts), when=datetime.fromtimestamp(now))


def stamp(ts: float | None) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts is not None else "–"


def count(n: int) -> str:
    return humanize.intcomma(n)


def facts_line(video: VideoFacts) -> str:
    """`1280x720 · 5.0 s · 24 fps · h264 + aac · 1.2 Mb/s`: what the file holds, in one line
    (the detail pane, the web gallery and an export's manifest say it the same way)."""
    bits = [f"{video.width}x{video.height}", f"{video.duration_s:.1f} s",
            f"{video.fps:g} fps", video.video_codec + (f" + {video.audio_codec}"
                                                       if video.audio_codec else ", no audio")]
    if video.bitrate:
        bits.append(f"{video.bitrate / 1e6:.1f} Mb/s")
    return " · ".join(bits)


def parameters_line(job: Job) -> str:
    """`duration=5s  resolution=720p  seed=3`: the request's settings besides the model and
    the texts (what tells forty takes of one prompt apart)."""
    req = job.request.to_dict()
    for key in ("model", "prompt", "provider", "negative_prompt", "image_url"):
        req.pop(key, None)
    options = req.pop("options", {})
    bits = [f"{k}={v}" for k, v in sorted(req.items())]
    bits += [f"{k}={v}" for k, v in sorted(options.items())]
    return "  ".join(bits) or "provider defaults"
