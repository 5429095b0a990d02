"""Signals for a process that follows jobs, with or without a terminal.

- SIGINT / SIGTERM, first: stop gracefully. A paid submit on the wire is waited for
  (bounded by its deadline) and its id written down; nothing new is sent.
- SIGINT, second: stop at once. A submit still on the wire leaves its job `unknown`.
- SIGHUP: the terminal went away (an SSH drop). The process keeps following its jobs,
  writing to the log file; standard streams point at /dev/null so that a print can never
  fail with EIO or block on a dead terminal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading

log = logging.getLogger("wan_tui")


def detach_from_terminal() -> None:
    """Point stdin, stdout and stderr at /dev/null (the terminal is gone or unwanted)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    for fd in (0, 1, 2):
        try:
            os.dup2(devnull, fd)
        except OSError:
            pass
    os.close(devnull)


class StopSignals:
    def __init__(self, *, hangup_stops: bool = False, on_hangup=None, on_stop=None) -> None:
        self.stop = asyncio.Event()
        self.force = asyncio.Event()
        self.hung_up = False
        self.received: list[str] = []
        self._hangup_stops = hangup_stops
        self._on_hangup = on_hangup
        self._on_stop = on_stop
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread gets signals (an engine run in a test thread)
        self._loop = asyncio.get_running_loop()
        self._loop.add_signal_handler(signal.SIGINT, self._interrupt, "SIGINT")
        self._loop.add_signal_handler(signal.SIGTERM, self._interrupt, "SIGTERM")
        self._loop.add_signal_handler(signal.SIGHUP, self._hangup)
        return self

    def remove(self) -> None:
        if self._loop is not None:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._loop.remove_signal_handler(sig)
            self._loop = None

    def __enter__(self) -> StopSignals:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _interrupt(self, name: str) -> None:
        self.received.append(name)
        if self.stop.is_set():
            if name == "SIGINT":  # a second ctrl-c: the user means now
                self.force.set()
            return
        log.info("%s: stopping once the requests on the wire are answered", name)
        self.stop.set()
        if self._on_stop is not None:
            self._on_stop(name)

    def _hangup(self) -> None:
        self.received.append("SIGHUP")
        if self.hung_up:
            return
        self.hung_up = True
        log.info("SIGHUP: the terminal is gone; following the jobs without it")
        detach_from_terminal()
        if self._on_hangup is not None:
            self._on_hangup()
        if self._hangup_stops:
            self._interrupt("SIGHUP")
