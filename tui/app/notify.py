"""Reaching the person at the terminal: bell, OSC 9 desktop notices, OSC 52 clipboard, and
opening a finished file in the system viewer when there is a desktop to open it on.

Over SSH there is no desktop, but the terminal on the other end still understands escape
sequences: OSC 52 puts a path on the user's own clipboard and OSC 9 raises a notification
there (iTerm2, WezTerm, kitty, foot, Windows Terminal). No Textual import: the App hands in
a writer.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

BEL = "\a"


def osc9(message: str) -> str:
    # Control characters would end the sequence early or inject others: flatten them.
    text = "".join(ch if ch.isprintable() else " " for ch in message)[:200]
    return f"\x1b]9;{text}{BEL}"


def tmux_passthrough(sequence: str) -> str:
    """tmux swallows unknown OSCs; its DCS passthrough forwards them to the outer terminal
    (when `allow-passthrough` is on; otherwise it is dropped as harmlessly)."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def over_ssh(env: Mapping[str, str]) -> bool:
    return any(env.get(var) for var in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"))


def has_display(env: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether a system viewer can show a window to the person at this terminal."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if over_ssh(env):
        return False  # a viewer would open on the remote machine's screen, if anywhere
    if platform == "darwin" or platform.startswith("win"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def viewer_command(path: Path, platform: str | None = None) -> list[str] | None:
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        return ["open", str(path)]
    if platform.startswith("win"):
        return ["cmd", "/c", "start", "", str(path)]
    opener = shutil.which("xdg-open")
    return [opener, str(path)] if opener else None


async def open_in_viewer(path: Path) -> str | None:
    """Hand the file to the desktop's viewer. Returns why it could not, or None."""
    command = viewer_command(path)
    if command is None:
        return "no xdg-open on this system"
    try:
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        # xdg-open/open return once the viewer is launched; waiting reaps the child.
        code = await asyncio.wait_for(proc.wait(), timeout=10)
    except (OSError, TimeoutError) as err:
        return f"could not start the viewer ({err})"
    return None if code == 0 else f"{command[0]} exited with status {code}"


class Terminal:
    """Writes escape sequences through the app's driver and remembers what it sent
    (tests and a headless app have no terminal to look at)."""

    def __init__(self, write: Callable[[str], None], copy: Callable[[str], None],
                 env: Mapping[str, str] | None = None) -> None:
        self._write = write
        self._copy = copy
        self._env = os.environ if env is None else env
        self.sent: deque[str] = deque(maxlen=50)

    def _emit(self, sequence: str) -> None:
        self.sent.append(sequence)
        self._write(sequence)

    def bell(self) -> None:
        self._emit(BEL)

    def desktop_notice(self, message: str) -> None:
        sequence = osc9(message)
        if self._env.get("TMUX"):
            sequence = tmux_passthrough(sequence)
        self._emit(sequence)

    def copy(self, text: str) -> None:
        """OSC 52: the clipboard of whoever sits at the terminal, even over SSH."""
        self.sent.append(f"osc52:{text}")
        self._copy(text)
