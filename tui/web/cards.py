"""A finished job as the gallery shows it: one JSON object per card.

The served gallery and an export's index.html draw the same cards with the same script, so
both are built here; only where the poster and the video are found differs (a URL by job id
on the server, a relative file name in an export).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tui import format as fmt
from tui.jobs import Job, JobState, ValidationError
from tui.media.facts import warnings
from tui.query import JobQuery
from tui.whereabouts import file_elsewhere

MAX_QUERY_CHARS = 500  # a filter is a few words; anything longer is a mistake or an attack


def finished_query(text: str) -> JobQuery:
    """The dashboard's filter narrowed to finished jobs: the gallery and an export are about
    videos to watch (`state:failed` there admits nothing). ValidationError for a typo."""
    if len(text) > MAX_QUERY_CHARS:
        raise ValidationError(f"the filter is {len(text)} characters long; at most "
                              f"{MAX_QUERY_CHARS} are read")
    query = JobQuery.parse(text)
    states = (JobState.DONE,) if query.states is None else tuple(
        s for s in query.states if s == JobState.DONE)
    return replace(query, states=states)


def card(job: Job, *, video_url: Callable[[Job], str], poster_url: Callable[[Job], str]
         ) -> dict[str, Any]:
    """Everything a card and its detail view show, JSON-ready."""
    # On a team's history the file may be on another machine's disk: no player for a path
    # that names nothing here (or another file), but the line that fetches it.
    where = file_elsewhere(job)
    playable = job.state == JobState.DONE and bool(job.file) and where is None
    return {
        "id": job.id,
        "state": job.state.value,
        "prompt": job.prompt,
        "negative_prompt": job.request.negative_prompt,
        "provider": job.provider,
        "model": job.model,
        "batch": job.batch_id,
        "params": fmt.parameters_line(job),
        "cost": fmt.cost_of(job),
        "cost_usd": job.cost_usd,
        "facts": fmt.facts_line(job.video) if job.video else None,
        "size": fmt.size(job.bytes) if job.bytes else None,
        "warnings": warnings(job.request, job.video, job.bytes),
        "pick": job.pick,
        "picked_at": job.picked_at,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "video": video_url(job) if playable else None,
        "poster": poster_url(job) if playable else None,
        "elsewhere": f"on {where.host}, not on this machine: {where.scp}" if where else None,
    }
