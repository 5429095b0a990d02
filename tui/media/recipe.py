"""A video that carries its own recipe: what made it, written into the MP4 and beside it.

After a download is verified, the recipe (prompt, negative prompt, provider, model,
parameters, seed, remote id, cost, wan-tui version) goes into the MP4's own metadata by a
remux -- packets copied, nothing re-encoded -- with `movflags=use_metadata_tags`, so ffprobe
and PyAV read every key (`ffprobe -show_format`: TAG:wan_tui_prompt=...). The same recipe, with
the file's facts and the job's times, goes beside it as `NAME.json` (the sidecar) unless the
config says `write_sidecars = false`. `wan-tui import` reads either back.

Tagging never costs the video: the remux is written to its own `.tagged` file and checked
(boxes tile, frames decode, same streams and length) before it replaces the download; any
failure leaves the downloaded file exactly as it was, untagged.

Blocking (PyAV): callers run `tag_copy` in a worker thread.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui import __version__
from tui.errors import WanError
from tui.jobs import Job, JobRequest, VideoFacts

# One prefix for every key we write: no clash with a player's own tags, easy to grep.
PREFIX = "wan_tui_"
RECIPE_TAG = PREFIX + "recipe"  # the whole recipe as JSON: what `import` reads
JOB_TAG = PREFIX + "job"  # the job's number, batch, source and times: `import` rebuilds them
SIDECAR_SUFFIX = ".json"
FORMAT = 1  # the recipe's layout; `import` refuses a newer one instead of misreading it
# Container-level keys the MP4 muxer writes itself; copied over they would become tags.
_MUXER_KEYS = frozenset({"major_brand", "minor_version", "compatible_brands", "encoder"})
# An image sent inline (a data: URL, megabytes) is not copied into every tag and sidecar:
# the recipe says what it was instead, and a request rebuilt from it asks for an image.
MAX_INLINE_IMAGE = 4096
IMAGE_OMITTED = "image_omitted"
# A remux has exactly the downloaded packets: a length off by more than this is not it.
DURATION_TOLERANCE_S = 0.05


class RecipeError(WanError):
    """A file's recipe could not be written or read (one line for a human)."""


def recipe_of(job: Job) -> dict[str, Any]:
    """What made this video, as plain JSON values. `params` is every request field other
    than the ones with their own key (duration, resolution, aspect ratio, audio, image,
    provider options): enough to ask for the same video again."""
    req = job.request
    params = {k: v for k, v in req.to_dict().items()
              if k not in ("prompt", "negative_prompt", "provider", "model", "seed")}
    image = params.get("image_url")
    if isinstance(image, str) and len(image) > MAX_INLINE_IMAGE:
        del params["image_url"]
        params[IMAGE_OMITTED] = f"{image.split(',', 1)[0]} ({len(image)} characters)"
    return {
        "format": FORMAT,
        "prompt": req.prompt,
        "negative_prompt": req.negative_prompt,
        "provider": req.provider,
        "model": req.model,
        "params": params,
        "seed": req.seed,
        "remote_id": job.remote_id,
        "cost_usd": job.cost_usd if job.cost_usd is not None else job.quote_usd,
        "cost_is_estimate": job.cost_is_estimate,
        "wan_tui_version": __version__,
    }


def request_of(recipe: Mapping[str, Any]) -> JobRequest:
    """The request a recipe describes, checked as a batch line is (ValidationError)."""
    params = recipe.get("params")
    fields: dict[str, Any] = dict(params) if isinstance(params, dict) else {}
    fields.pop(IMAGE_OMITTED, None)
    for key in ("prompt", "negative_prompt", "provider", "model", "seed"):
        if recipe.get(key) is not None:
            fields[key] = recipe[key]
    return JobRequest.from_dict(fields)


def job_facts(job: Job) -> dict[str, Any]:
    """Where the job stood in its history: enough for `import` to rebuild its batch and
    lineage (the ids are renumbered there) and its times."""
    return {"id": job.id, "batch_id": job.batch_id, "source_id": job.source_id,
            "created_at": job.created_at, "submitted_at": job.submitted_at,
            "quote_usd": job.quote_usd}


def tags_of(recipe: Mapping[str, Any], job: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The MP4 tags for a recipe: one readable key per field (what ffprobe lists) plus the
    whole recipe as JSON under RECIPE_TAG (and the job's facts under JOB_TAG). `title` is
    the prompt, for players that show one."""
    tags = {"title": str(recipe["prompt"]), RECIPE_TAG: json.dumps(recipe, sort_keys=True)}
    if job is not None:
        tags[JOB_TAG] = json.dumps(job, sort_keys=True)
    for key, value in recipe.items():
        if key == "format" or value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        tags[key if key.startswith(PREFIX) else PREFIX + key] = text
    return tags


def read_tags(path: Path) -> dict[str, str]:
    """The container-level tags of a video (RecipeError when it cannot be opened)."""
    import av  # slow to import; only needed once a file is on disk

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return dict(container.metadata)
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path.name}: cannot read its tags ({exc})") from exc


def recipe_in_tags(tags: Mapping[str, str], key: str = RECIPE_TAG) -> dict[str, Any] | None:
    """The recipe written by tags_of (or with `key=JOB_TAG` the job's facts), or None when
    the file carries none (or a broken one)."""
    text = tags.get(key)
    if not text:
        return None
    try:
        recipe = json.loads(text)
    except ValueError:
        return None
    return recipe if isinstance(recipe, dict) else None


def tagged_path(part: Path) -> Path:
    return part.with_name(part.name + ".tagged")


def discard(path: Path) -> None:
    """Remove a temporary file if it is there; a folder that refuses (or a directory in its
    place) is no reason to fail what the file was for."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def tag_copy(src: Path, dest: Path, tags: Mapping[str, str], facts: VideoFacts) -> VideoFacts:
    """Remux `src` into `dest` with `tags` added (no re-encoding), fsync it, and check it
    is the same video: boxes tile, frames decode, same size, codecs and length as `facts`.
    Returns the copy's facts. RecipeError (and `dest` removed) on any failure; `src` is
    never touched."""
    import av

    from tui.media.probe import UndecodableError, probe

    try:
        with av.open(str(src), metadata_errors="ignore") as inp, av.open(
                str(dest), "w", format="mp4",
                options={"movflags": "use_metadata_tags+faststart"}) as out:
            out.metadata.update({k: v for k, v in inp.metadata.items()
                                 if k not in _MUXER_KEYS})
            out.metadata.update(tags)
            streams = {s.index: out.add_stream_from_template(s)
                       for s in inp.streams if s.type in ("video", "audio")}
            for packet in inp.demux(*[s for s in inp.streams if s.index in streams]):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
        with dest.open("rb") as fh:
            os.fsync(fh.fileno())
        copy = probe(dest)
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError, UndecodableError,
            KeyError) as exc:
        discard(dest)
        raise RecipeError(f"could not write the recipe into the file ({exc})") from exc
    same = ((copy.width, copy.height, copy.video_codec, copy.audio_codec)
            == (facts.width, facts.height, facts.video_codec, facts.audio_codec)
            and math.isclose(copy.duration_s, facts.duration_s, abs_tol=DURATION_TOLERANCE_S))
    if not same:
        discard(dest)
        raise RecipeError("the tagged copy did not match the download; kept the download "
                          "untagged")
    return copy


def sidecar_path(video: Path) -> Path:
    return video.with_suffix(SIDECAR_SUFFIX)


@dataclass(frozen=True)
class Sidecar:
    """What `NAME.json` holds: the recipe, the file it describes and the job's history."""

    recipe: dict[str, Any]
    file: dict[str, Any]
    job: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps({"wan_tui_sidecar": FORMAT, "recipe": self.recipe, "file": self.file,
                           "job": self.job}, indent=2, sort_keys=True) + "\n"


def sidecar_for(job: Job, *, path: Path, size: int, sha256: str, download_sha256: str,
                video: VideoFacts | None, finished_at: float) -> Sidecar:
    return Sidecar(
        recipe=recipe_of(job),
        file={"name": path.name, "bytes": size, "sha256": sha256,
              "download_sha256": download_sha256,
              "video": video.to_dict() if video else None},
        job={**job_facts(job), "finished_at": finished_at},
    )


def write_sidecar(video: Path, sidecar: Sidecar) -> Path:
    """`NAME.json` beside the video, written whole or not at all (temp file, fsync, rename)."""
    dest = sidecar_path(video)
    part = dest.with_name(dest.name + ".part")
    try:
        with part.open("w", encoding="utf-8") as fh:
            fh.write(sidecar.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, dest)
    except OSError as exc:
        discard(part)
        raise RecipeError(f"could not write {dest.name} ({exc.strerror or exc})") from exc
    return dest


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """A sidecar's content, or None when the file is not one of ours (or is damaged)."""
    try:
        if path.stat().st_size > 1 << 20:  # ours are a few KB; a big one is something else
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("recipe"), dict):
        return None
    return data
