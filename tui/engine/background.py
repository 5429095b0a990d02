"""Starting the engine process for a client: `wan-tui engine run`, detached.

A re-exec, not a fork: the dashboard that asks for it runs threads (Textual's input and
writer threads, aiosqlite's connection threads), and a forked copy of a threaded process
may inherit a lock held by a thread that does not exist in the child. A fresh interpreter
in its own session (setsid) has no terminal to lose, a clean event loop, and shows up in
`ps` as what it is.

Two clients may notice at the same moment that no engine runs and both start one: the
history's flock decides (tui/engine/lock.py), and the loser exits quietly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tui.engine.lock import EngineLock

# A started engine takes about a second to import and take the lock; a client does not
# start another while the one it started is still on its way (or was just refused).
STARTING_S = 10.0


def spawn_engine(log_file: str | Path) -> subprocess.Popen[bytes]:
    """Start `wan-tui engine run` detached, its output appended to the log file."""
    path = Path(log_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as log:
        os.chmod(path, 0o600)
        return subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "engine", "run", "--spawned"],
            # Logging goes to the log file; anything on stderr (a crash before logging is
            # set up) lands there too. No terminal: nothing for a hang-up to end.
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            start_new_session=True, close_fds=True,
        )


class EngineStarter:
    """A client's promise that an engine runs while there is work: `ensure()` starts one
    when the lock is free, at most one at a time from this client."""

    def __init__(self, lock: EngineLock, log_file: str | Path) -> None:
        self.lock = lock
        self.log_file = log_file
        self.started: list[int] = []  # pids this client started, oldest first
        self._proc: subprocess.Popen[bytes] | None = None
        self._at = 0.0

    def running(self) -> int | None:
        """The engine's pid, or None when nobody holds the lock."""
        return self.lock.holder()

    def ensure(self) -> int:
        """The running engine's pid, or the pid of the one this client starts (or started
        moments ago and is still taking the lock)."""
        pid = self.lock.holder()
        if pid is not None:
            return pid
        proc = self._proc
        # poll() also reaps it: an engine that ended (idle, or lost the race to another
        # client's) leaves no zombie behind in a long-lived window. One that failed (exit
        # status 1: a broken config, its name in use on a team's database; the log says
        # which) is not started again at once, or a window would start one every look.
        if proc is not None and (proc.poll() is None or proc.returncode > 0) \
                and time.monotonic() - self._at < STARTING_S:
            return proc.pid
        self._proc = spawn_engine(self.log_file)
        self._at = time.monotonic()
        self.started.append(self._proc.pid)
        return self._proc.pid

    def reap(self) -> None:
        if self._proc is not None:
            self._proc.poll()

    def gone(self, pid: int) -> bool:
        """Whether process `pid` has exited (reaped, when this client started it: a child
        that exited is a zombie until then, and signal 0 still reaches it)."""
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is not None
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):  # gone (or another user's number now)
            return True
        return _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether `pid` has exited and waits to be reaped by a parent that is not this
    process (in a container, pid 1 may never reap it). False where /proc is not."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False
