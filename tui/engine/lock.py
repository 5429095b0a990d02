"""One engine per history file: two engines would poll twice and could submit twice.

The history's flock is the election: whoever holds it follows the jobs and sends paid
requests; every other wan-tui process is a client. The kernel drops the lock when its
holder dies (SIGKILL included), so a waiting client can take over without any cleanup.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tui.errors import EXIT_USAGE, Failure, WanError


class EngineBusy(WanError, RuntimeError):
    """Another process owns this history's engine: the user can stop it or wait."""

    exit_status = EXIT_USAGE


class EngineLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never blocks."""
        if self._fd is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:  # beside history.db: a read-only or full home
            raise Failure(f"cannot create the engine lock {self.path} ({err.strerror}): make "
                          f"{self.path.parent} writable, or set WAN_TUI_HOME to a writable "
                          "folder (`wan-tui doctor` checks it)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        os.fsync(fd)
        self._fd = fd
        return True

    def acquire(self) -> None:
        if not self.try_acquire():
            holder = self.holder()
            raise EngineBusy(
                f"another wan-tui (pid {holder or '?'}) is already running these jobs; "
                "stop it or let it finish"
            )

    def holder(self) -> int | None:
        """The pid written by the current holder, if any process holds the lock."""
        if self._fd is not None:
            return os.getpid()
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        if not text.isdigit():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return int(text)  # held: the pid is its holder's
        finally:
            os.close(fd)  # closing drops a probe lock we may have taken
        return None  # nobody holds it: the pid in the file is stale

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
