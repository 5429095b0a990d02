"""Starting an engine that belongs to no terminal: `wan-tui watch --background`.

A re-exec, not a fork: the dashboard that asks for it runs threads (Textual's input and
writer threads, aiosqlite's connection threads), and a forked copy of a threaded process
may inherit a lock held by a thread that does not exist in the child. A fresh interpreter
in its own session (setsid) has no terminal to lose, a clean event loop, and shows up in
`ps` as what it is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def spawn_background_engine(log_file: str | Path) -> int:
    """Start `wan-tui watch --background` detached; returns its pid at once.

    It waits for the history's lock (the caller may still hold it for a moment), follows
    every active job to disk, and exits when nothing is active."""
    path = Path(log_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as log:
        os.chmod(path, 0o600)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "watch", "--background"],
            # Its progress lines are for terminals; anything on stderr (a crash before
            # logging is set up) lands in the log file.
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            start_new_session=True, close_fds=True,
        )
    return proc.pid
