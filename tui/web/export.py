"""`wan-tui export QUERY DIR`: a folder to hand to someone else.

    DIR/index.html           the gallery, working opened from disk (no server)
    DIR/videos/NAME.mp4      the MP4s: hard links where the filesystem allows, copies otherwise
    DIR/posters/ID.png       a frame from the middle of each
    DIR/manifest.json        per job: prompt, model, parameters, cost, facts, sha256, pick
    DIR/manifest.csv         the same, one row per job, for a spreadsheet
    DIR/contact-sheet.png    the posters in a grid with each job's number

The sha256 is of the file in DIR, read after it is placed, so a reader can check a copy.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.errors import EXIT_OK, UsageError
from tui.jobs import Job


def add_parser(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="a shareable folder of finished jobs: index.html, "
                            "MP4s, manifests, a contact sheet")
    export.add_argument("query", help='the dashboard\'s filter, e.g. "batch:31 pick:star" '
                        '("" for every finished job)')
    export.add_argument("dir", type=Path, help="a new or empty folder")


@dataclass
class Exported:
    folder: Path
    jobs: int = 0
    linked: int = 0
    copied: int = 0
    missing: list[int] = field(default_factory=list)
    sheets: list[Path] = field(default_factory=list)


async def _read(history: Path | str, query_text: str) -> tuple[list[Job], dict[int, list[dict]]]:
    from tui.store import open_store
    from tui.web.cards import finished_query

    query = finished_query(query_text)
    store = await open_store(history)
    try:
        jobs = await store.list_jobs(query, order="created", descending=False)
        events = {job.id: [{"at": e.at, "state": e.state.value, "detail": e.detail}
                           for e in await store.events(job.id)] for job in jobs}
    finally:
        await store.close()
    return jobs, events


def _empty_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file: export into a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise UsageError(f"{folder} is not empty: export into a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)


def _place(source: Path, dest: Path) -> bool:
    """Hard link `source` at `dest` (True), or copy it when linking is not possible."""
    try:
        os.link(source, dest)
        return True
    except OSError:  # another filesystem (EXDEV), or links not allowed there
        part = dest.with_name(dest.name + ".part")
        shutil.copyfile(source, part)
        os.replace(part, dest)
        return False


def _record(job: Job, video: str, poster: str | None, sha256: str) -> dict[str, Any]:
    from tui import format as fmt
    from tui.media.facts import warnings

    return {
        "id": job.id,
        "file": video,
        "poster": poster,
        "sha256": sha256,
        "bytes": job.bytes,
        "pick": job.pick,
        "picked_at": job.picked_at,
        "prompt": job.prompt,
        "negative_prompt": job.request.negative_prompt,
        "provider": job.provider,
        "model": job.model,
        "parameters": job.request.to_dict(),
        "parameters_line": fmt.parameters_line(job),
        "cost_usd": job.cost_usd,
        "cost_is_estimate": job.cost_is_estimate,
        "facts": job.video.to_dict() if job.video else None,
        "facts_line": fmt.facts_line(job.video) if job.video else None,
        "warnings": warnings(job.request, job.video, job.bytes),
        "batch": job.batch_id,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


CSV_COLUMNS = ("id", "file", "pick", "picked_at", "prompt", "negative_prompt", "provider",
               "model", "parameters", "cost_usd", "cost_is_estimate", "width", "height",
               "duration_s", "fps", "video_codec", "audio_codec", "bytes", "sha256",
               "warnings", "batch", "finished_at")


def _csv_row(record: dict[str, Any]) -> dict[str, Any]:
    facts = record["facts"] or {}
    return {**{k: record.get(k) for k in CSV_COLUMNS},
            "parameters": record["parameters_line"],
            "warnings": "; ".join(record["warnings"]),
            **{k: facts.get(k) for k in ("width", "height", "duration_s", "fps", "video_codec",
                                          "audio_codec")}}


def write_export(jobs: list[Job], events: dict[int, list[dict]], folder: Path, *,
                 query: str, thumbs: Path) -> Exported:
    """Blocking: files are linked or copied, hashed and decoded here."""
    from tui.engine.files import sha256_of
    from tui.media.frames import thumbnail
    from tui.media.probe import UndecodableError
    from tui.web import page
    from tui.web.cards import card
    from tui.web.contact_sheet import draw_sheets
    from tui.whereabouts import file_elsewhere

    _empty_folder(folder)
    (folder / "videos").mkdir()
    (folder / "posters").mkdir()
    done = Exported(folder)
    records: list[dict[str, Any]] = []
    cards: list[dict[str, Any]] = []
    tiles: list[tuple[int, str | None, Path | None]] = []
    names: dict[int, tuple[str, str | None]] = {}
    for job in jobs:
        source = Path(job.file or "")
        if not source.is_file() or file_elsewhere(job) is not None:  # another machine's
            done.missing.append(job.id)
            continue
        name = f"videos/{source.name}"
        if (folder / name).exists():  # two jobs' files of one name (different folders)
            name = f"videos/{job.id}_{source.name}"
        if _place(source, folder / name):
            done.linked += 1
        else:
            done.copied += 1
        poster: str | None = f"posters/{job.id}.png"
        try:
            shutil.copyfile(thumbnail(source, thumbs / f"{job.id}.png"), folder / str(poster))
        except (UndecodableError, OSError):
            poster = None  # the card and the sheet show the job without a picture
        names[job.id] = (name, poster)
        records.append(_record(job, name, poster, sha256_of(folder / name)))
        cards.append(card(job, video_url=lambda j: names[j.id][0],
                          poster_url=lambda j: names[j.id][1] or ""))
        tiles.append((job.id, job.pick,
                      folder / poster if poster else None))
    done.jobs = len(records)
    manifest = {"exported_at": time.time(), "query": query, "jobs": records}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(_csv_row(r) for r in records)
    done.sheets = draw_sheets(tiles, folder)
    title = f"wan-tui export: {query}" if query.strip() else "wan-tui export"
    (folder / "index.html").write_text(page.render(title=title, data={
        "mode": "static", "jobs": cards,
        "events": {str(job_id): evs for job_id, evs in events.items() if job_id in names}}),
        encoding="utf-8")
    return done


def cmd_export(args: argparse.Namespace, config) -> int:
    if config.database is None and not config.db_path.exists():
        raise UsageError(f"there is no history at {config.db_path} yet: run some jobs first")
    jobs, events = asyncio.run(_read(config.history, args.query))
    if not jobs:
        raise UsageError(f"no finished job matches {args.query!r}: try `wan-tui list` or a "
                         "wider filter")
    done = write_export(jobs, events, args.dir, query=args.query,
                        thumbs=config.db_path.parent / "thumbs")
    how = []
    if done.linked:
        how.append(f"{done.linked} linked")
    if done.copied:
        how.append(f"{done.copied} copied")
    print(f"exported {done.jobs} job{'s' if done.jobs != 1 else ''} to {done.folder} "
          f"({', '.join(how) or 'no video'}); open {done.folder / 'index.html'}")
    if done.missing:
        print("left out (file not on this machine's disk): "
              f"{', '.join(f'#{n}' for n in done.missing)}", file=sys.stderr)
    return EXIT_OK
