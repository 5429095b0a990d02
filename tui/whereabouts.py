"""Where a job is on a team's history, seen from this machine: whose disk holds its video,
which engine follows it (under a lease), and which machine recorded it.

On a team's history (PostgreSQL) a job's `file` is a path on the disk of the machine whose
engine downloaded it (`file_host`). On any other machine that path names nothing, or worse
another file, so opening or copying it would be wrong: what the user needs there is the
`scp` line that fetches it. A shared output folder (NFS, SMB) is the exception: the path
is there and its size matches what was downloaded, so it is used as it is.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from tui.config import machine_name
from tui.jobs import Job


@dataclass(frozen=True)
class Elsewhere:
    """A job's file on another machine's disk."""

    host: str
    path: str

    @property
    def scp(self) -> str:
        """The command that fetches it into the current folder, safe to paste in a shell."""
        return f"scp {shlex.quote(self.host)}:{shlex.quote(self.path)} ."


def file_elsewhere(job: Job, here: str | None = None) -> Elsewhere | None:
    """The machine holding the job's file when that is not this one (and the file is not
    in a folder this machine shares with it); None when the file is here, or there is none."""
    if not job.file or not job.file_host:
        return None  # one person's history: every file is on this machine
    if job.file_host == (here if here is not None else machine_name()):
        return None
    if _same_file_here(job.file, job.bytes):
        return None  # a shared output folder: the very file is reachable here
    return Elsewhere(job.file_host, job.file)


def _same_file_here(path: str, size: int | None) -> bool:
    # The size tells the downloaded file from another one that happens to have its name
    # (every machine's default output folder has the same path).
    try:
        return size is not None and os.stat(path).st_size == size
    except OSError:
        return False


@dataclass(frozen=True)
class Follower:
    """The engine holding an active job's lease, and how long that lease has left
    (negative: it ran out, and another engine adopts the job once it looks)."""

    name: str
    lease_left_s: float | None

    def to_json(self) -> dict[str, object]:
        left = None if self.lease_left_s is None else round(self.lease_left_s, 1)
        return {"name": self.name, "lease_left_s": left}


def follower(job: Job, now: float) -> Follower | None:
    """Which engine follows the job now: only an active job is followed, and only once an
    engine has taken its lease (a pending job waits for its machine's engine)."""
    if not job.state.active or not job.owner:
        return None
    return Follower(job.owner, None if job.lease_until is None else job.lease_until - now)
