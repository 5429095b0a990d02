"""Getting a video onto disk whole: readable names, `.part` streaming, checks, fsync, rename.

A file only gets its final name after its size matches Content-Length, its MP4 boxes
tile it exactly, its first and last frames decode (tui.media.probe), and it is fsynced --
so a final name always means a whole, playable video, and only then may the remote copy be
deleted. A copy that arrived whole but fails a check is kept under a suspect name: it may be
all the user ever gets for the money, and it is the evidence when the same bytes keep failing.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
import shutil
import struct
import tempfile
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tui.errors import WanError
from tui.jobs import VideoFacts
from tui.media.probe import UndecodableError, probe
from tui.media.recipe import RecipeError, discard, tag_copy, tagged_path
from tui.providers.base import VideoStream


class DownloadError(WanError):
    """The bytes that arrived are not a whole video; fetching again may fix it."""


class RejectedCopy(DownloadError):
    """The whole body arrived (its size is right) but failed a check: not a network cut.

    The copy is kept at `kept`; `sha256` lets the caller see the same bytes failing again.
    """

    def __init__(self, message: str, *, kept: Path, sha256: str, size: int) -> None:
        super().__init__(message)
        self.kept, self.sha256, self.size = kept, sha256, size


# Suspect copies are named for the check they failed, so a listing says what is wrong.
UNDECODABLE_SUFFIX = ".undecodable.mp4"
NOT_MP4_SUFFIX = ".not-a-video.mp4"


def suspect_path(dest: Path, suffix: str) -> Path:
    return dest.with_name(dest.name.removesuffix(".mp4") + suffix)


@dataclass(frozen=True)
class SavedFile:
    path: Path
    size: int
    sha256: str  # of the file as it is on disk (with its recipe tags when they were written)
    video: VideoFacts | None = None
    download_sha256: str = ""  # of the bytes as the provider sent them
    tag_problem: str | None = None  # why the recipe is not in the file (it was kept as sent)


def slug(text: str, limit: int = 40) -> str:
    """ASCII words joined by dashes: nothing a prompt says can become a path."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    out = ""
    for word in words:
        candidate = f"{out}-{word}" if out else word
        if len(candidate) > limit:
            break
        out = candidate
    return out or "video"


def output_name(job_id: int, model: str, prompt: str, when: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when or time.time()))
    model_part = re.sub(r"[^a-z0-9.]+", "-", model.lower()).strip("-.") or "model"
    return f"{stamp}_{model_part[:40]}_{slug(prompt)}_{job_id}.mp4"


def check_mp4(path: Path) -> None:
    """Walk the top-level MP4 boxes: they must start with ftyp, include moov and mdat,
    and tile the file exactly. A cut-off or garbage body fails here."""
    size = path.stat().st_size
    seen: list[bytes] = []
    with path.open("rb") as fh:
        if fh.read(8)[4:8] != b"ftyp":
            raise DownloadError("not an MP4 file (no ftyp box first): the provider sent "
                                "something else")
        fh.seek(0)
        pos = 0
        while pos < size:
            header = fh.read(8)
            if len(header) < 8:
                raise DownloadError("video ends inside a box header (cut off)")
            box_size, box_type = struct.unpack(">I4s", header)
            header_len = 8
            if box_size == 1:
                large = fh.read(8)
                if len(large) < 8:
                    raise DownloadError("video ends inside a box header (cut off)")
                box_size = struct.unpack(">Q", large)[0]
                header_len = 16
            elif box_size == 0:
                box_size = size - pos
            if box_size < header_len or pos + box_size > size:
                raise DownloadError(f"MP4 box {box_type!r} runs past the end (cut off)")
            seen.append(box_type)
            pos += box_size
            fh.seek(pos)
    for needed in (b"moov", b"mdat"):
        if needed not in seen:
            raise DownloadError(f"MP4 has no {needed.decode()} box")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


async def save_stream(stream: VideoStream, dest: Path,
                      tags: Mapping[str, str] | None = None) -> SavedFile:
    """Stream to `dest.part` (memory flat), check, decode, fsync, rename to `dest`.

    With `tags`, the verified copy is remuxed with them (tui.media.recipe.tag_copy) before
    the rename: the final name then holds the tagged, re-verified file, and `sha256` is
    that file's. A remux that fails keeps the download as it came (`tag_problem` says why).

    Always closes the stream. Raises DownloadError (and removes the .part) when the bytes
    are cut off, RejectedCopy (keeping them under a suspect name) when they arrived whole
    but are not a playable video, NetworkError when the connection broke, DiskError when
    the folder cannot take the file (read-only, not a folder, full). Decoding runs in a
    worker thread: it must never block the event loop the dashboard draws on.
    """
    folder = dest.parent
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    size = 0
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if stream.content_length is not None:
                check_free_space(folder, stream.content_length)
            fh = part.open("wb")
        except OSError as exc:
            raise disk_error(folder, exc) from exc
        with fh:
            async for chunk in stream.iter_bytes():
                _disk_op(folder, fh.write, chunk)
                digest.update(chunk)
                size += len(chunk)
            if stream.content_length is not None and size != stream.content_length:
                raise DownloadError(
                    f"got {size} of {stream.content_length} bytes (connection cut off)"
                )
            if size == 0:
                raise DownloadError("the provider sent an empty video")
            _disk_op(folder, fh.flush)
            _disk_op(folder, os.fsync, fh.fileno())
        sha256 = digest.hexdigest()
        try:
            check_mp4(part)
            facts = await asyncio.to_thread(probe, part)
        except (DownloadError, UndecodableError) as err:
            suffix = NOT_MP4_SUFFIX if isinstance(err, DownloadError) else UNDECODABLE_SUFFIX
            kept = suspect_path(dest, suffix)
            _disk_op(folder, os.replace, part, kept)
            raise RejectedCopy(str(err), kept=kept, sha256=sha256, size=size) from err
        download_sha256, tag_problem = sha256, None
        if tags:
            tagged = tagged_path(part)
            try:
                tagged_facts = await asyncio.to_thread(tag_copy, part, tagged, tags, facts)
                tagged_sha256 = await asyncio.to_thread(sha256_of, tagged)
                tagged_size = tagged.stat().st_size
            except (RecipeError, OSError) as err:
                tag_problem = str(err)  # the download itself is untouched: keep it
                discard(tagged)
            else:
                _disk_op(folder, os.replace, tagged, part)
                facts, sha256, size = tagged_facts, tagged_sha256, tagged_size
        _disk_op(folder, os.replace, part, dest)
        _fsync_dir(folder)
        for suffix in (UNDECODABLE_SUFFIX, NOT_MP4_SUFFIX):  # a good copy ends the suspicion
            suspect_path(dest, suffix).unlink(missing_ok=True)
    except BaseException:
        try:
            part.unlink(missing_ok=True)
            discard(tagged_path(part))
        except OSError:
            pass  # the folder that refused the write may refuse this too
        raise
    finally:
        await stream.aclose()
    return SavedFile(dest, size, sha256, facts, download_sha256, tag_problem)


# ---------------------------------------------------------------- a folder that says no

# Room kept beyond the video itself: the filesystem's own blocks, the history's WAL.
SPACE_MARGIN_BYTES = 1 << 20


class DiskError(WanError):
    """The output folder cannot take a video: read-only, not a folder, or full. Fetching
    again does not help until the user fixes it, so the job waits (resumable) and the
    message says which folder and what to do, in one line."""

    def __init__(self, folder: Path, reason: str, fix: str) -> None:
        super().__init__(f"cannot save videos in {folder}: {reason}; {fix}")
        self.folder = folder


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_ELSEWHERE = "or set output_dir in the config (or WAN_TUI_OUTPUT_DIR) to another folder"


def disk_error(folder: Path, exc: OSError) -> DiskError:
    if exc.errno in _FULL:
        return DiskError(folder, "the disk is full", "free some space there")
    if exc.errno == errno.EROFS:
        return DiskError(folder, "it is on a read-only filesystem",
                         f"remount it read-write {_ELSEWHERE}")
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        return DiskError(folder, "a file is where the folder should be",
                         f"move that file away {_ELSEWHERE}")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return DiskError(folder, "permission denied", f"make it writable {_ELSEWHERE}")
    return DiskError(folder, exc.strerror or str(exc), f"fix it {_ELSEWHERE}")


def _disk_op(folder: Path, op, *args):
    try:
        return op(*args)
    except OSError as exc:
        raise disk_error(folder, exc) from exc


def check_free_space(folder: Path, needed: int) -> None:
    """Refuse before the first byte when the size is known and will not fit: a download
    that fills the disk halfway helps no one and starves everything else on it."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: the writes themselves will say
    if free < needed + SPACE_MARGIN_BYTES:
        raise DiskError(folder, f"the video needs {needed / 1e6:.1f} MB and only "
                        f"{free / 1e6:.1f} MB is free", "free some space there")


def folder_problem(folder: Path) -> str | None:
    """Why videos could not be saved in `folder` now, or None (for `wan-tui doctor`).
    Creates the folder if it is missing, as a download would, and writes a probe file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".wan-tui-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return str(disk_error(folder, exc))
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
