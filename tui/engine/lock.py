"""One engine per history file: two engines would poll twice and could submit twice."""

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

    def acquire(self) -> None:
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
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise EngineBusy(
                f"another wan-tui (pid {holder}) is already running these jobs; "
                "stop it or let it finish"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
