"""`wan-tui import FOLDER`: history rebuilt from videos that carry their recipe.

For a lost history, or a new machine: every MP4 under FOLDER whose sidecar (`NAME.json`) or
own tags (tui.media.recipe) hold a recipe becomes a finished job again -- its request, remote
id, cost, file, size, sha256 and video facts, in its old batch and lineage, with its old
times. The file stays where it is. A job the history already holds (same provider and
remote id) is not added twice, so importing the same folder again adds nothing.

Nothing here talks to a provider: no key is needed and no call is made, paid or not.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.engine.files import sha256_of
from tui.errors import EXIT_USAGE, WanError
from tui.jobs import Job, JobState, ValidationError, VideoFacts
from tui.media.probe import UndecodableError, probe
from tui.media.recipe import (
    FORMAT,
    JOB_TAG,
    RecipeError,
    read_sidecar,
    read_tags,
    recipe_in_tags,
    request_of,
    sidecar_path,
)

MAX_FILES = 100_000  # videos looked at in one import: a wrong folder (/) ends, and says so


class ImportRefused(WanError):
    exit_status = EXIT_USAGE


@dataclass
class Found:
    """One video's recipe, from its sidecar or its tags, with the job's facts."""

    path: Path
    recipe: dict[str, Any]
    job: dict[str, Any]
    source: str  # "sidecar" or "tags"
    sidecar_sha256: str | None = None


@dataclass
class Outcome:
    added: list[Job] = field(default_factory=list)
    known: int = 0  # already in the history (same provider and remote id)
    skipped: list[str] = field(default_factory=list)  # `NAME: why`, one per file


def videos(folder: Path) -> Iterator[Path]:
    """The MP4s under `folder`, sorted, without following links out of it, skipping our
    own temporary and suspect copies (`.part`, `.undecodable.mp4`, `.not-a-video.mp4`)."""
    count = 0
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if not name.lower().endswith(".mp4") or name.endswith(
                    (".undecodable.mp4", ".not-a-video.mp4")):
                continue
            count += 1
            if count > MAX_FILES:
                raise ImportRefused(f"{folder}: more than {MAX_FILES} videos; import a "
                                   "smaller folder")
            yield Path(root) / name


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def find_recipe(path: Path) -> Found | None:
    """The video's recipe from its sidecar, else from its tags; None when it has neither."""
    side = read_sidecar(sidecar_path(path))
    if side is not None and (side.get("file") or {}).get("name") in (path.name, None):
        facts = side.get("file") or {}
        return Found(path, side["recipe"], side.get("job") or {}, "sidecar",
                     facts.get("sha256") if isinstance(facts.get("sha256"), str) else None)
    try:
        tags = read_tags(path)
    except RecipeError:
        return None
    recipe = recipe_in_tags(tags)
    if recipe is None:
        return None
    return Found(path, recipe, recipe_in_tags(tags, JOB_TAG) or {}, "tags")


def rebuild(found: Found, now: float) -> tuple[Job, str]:
    """The finished job a file stands for, and the event that says where it came from.
    Raises ValidationError / RecipeError / UndecodableError / OSError with the reason."""
    recipe = found.recipe
    if _int(recipe.get("format")) is not None and recipe["format"] > FORMAT:
        raise RecipeError(f"its recipe is format {recipe['format']}, newer than this "
                          "wan-tui reads: upgrade wan-tui")
    request = request_of(recipe)
    path = found.path.resolve()
    size = path.stat().st_size
    sha256 = sha256_of(path)
    video: VideoFacts = probe(path)  # whole and playable, as a download must be
    note = ""
    if found.sidecar_sha256 and found.sidecar_sha256 != sha256:
        note = " (the file has changed since its sidecar was written)"
    job = found.job
    created = _number(job.get("created_at")) or path.stat().st_mtime
    finished = _number(job.get("finished_at")) or path.stat().st_mtime
    cost = _number(recipe.get("cost_usd"))
    remote_id = recipe.get("remote_id") if isinstance(recipe.get("remote_id"), str) else None
    rebuilt = Job(
        id=_int(job.get("id")) or 0,
        request=request,
        state=JobState.DONE,
        created_at=created,
        updated_at=now,
        remote_id=remote_id,
        quote_usd=_number(job.get("quote_usd")),
        cost_usd=cost,
        cost_is_estimate=recipe.get("cost_is_estimate") is True,
        file=str(path),
        bytes=size,
        sha256=sha256,
        submitted_at=_number(job.get("submitted_at")),
        finished_at=finished,
        progress=1.0,
        batch_id=_int(job.get("batch_id")),
        source_id=_int(job.get("source_id")),
        video=video,
    )
    return rebuilt, f"imported from {path.name} ({found.source}){note}"


async def import_folder(store: Any, folder: Path) -> Outcome:
    """Read every video under `folder` and add the jobs the history does not hold yet."""
    if not folder.is_dir():
        raise ImportRefused(f"{folder}: not a folder (give the folder that holds the videos)")
    outcome = Outcome()
    rebuilt: list[Job] = []
    details: list[str] = []
    labels: set[int] = set()
    now = time.time()
    for path in await asyncio.to_thread(lambda: list(videos(folder))):
        found = await asyncio.to_thread(find_recipe, path)
        if found is None:
            outcome.skipped.append(f"{path.name}: no recipe (not made by wan-tui, or made "
                                   "before it wrote one)")
            continue
        remote = found.recipe.get("remote_id")
        provider = found.recipe.get("provider")
        if isinstance(remote, str) and isinstance(provider, str) and (
                await store.find_by_remote_id(provider, remote)) is not None:
            outcome.known += 1  # known already: not even decoded again
            continue
        try:
            job, detail = await asyncio.to_thread(rebuild, found, now)
        except (ValidationError, RecipeError, UndecodableError, OSError) as err:
            outcome.skipped.append(f"{path.name}: {err}")
            continue
        if job.id in labels or job.id <= 0:  # two histories' job 7, or none: a label of
            job = job.with_(id=-(len(rebuilt) + 1))  # its own, linking to nothing
        labels.add(job.id)
        rebuilt.append(job)
        details.append(detail)
    added = await store.import_jobs(rebuilt, details)
    outcome.known += len(rebuilt) - len(added)  # the same remote id twice in the folder
    outcome.added = added
    return outcome

