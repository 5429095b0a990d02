"""What the terminal can draw pictures with, from what it answers (not from its name).

Asked once, before the dashboard owns the terminal (its input thread would take the
answers): kitty's graphics query, the terminal's name and version (XTVERSION), the
graphics geometry and colour registers (XTSMGRAPHICS), the cell size in pixels, and the
device attributes (DA1) last -- every terminal answers DA1, and answers come in the order
asked, so its answer ends the wait. Over SSH the local terminal answers, which is the one
that draws. No Textual import: `wan-tui doctor` asks the same questions.

The choice, on `images = "auto"`:
- kitty's graphics protocol when the terminal answers its query with OK. Pictures are
  placed directly at their cell (`a=p` with the cursor saved and not moved), which every
  kitty since 0.20 draws; Unicode placeholders (kitty 0.28+) are never written, so no
  version can show them as boxes.
- sixel when DA1 lists attribute 4 (xterm as a VT340, mlterm, foot, WezTerm, konsole...),
  sized within the geometry and colour registers XTSMGRAPHICS reports.
- half-blocks otherwise, inside tmux or GNU screen (they do not pass graphics through unless
  configured to, and we cannot see that), and when the terminal does not answer.
"""

from __future__ import annotations

import os
import re
import select
import sys
import time
from dataclasses import dataclass, field

from tui.errors import ConfigError

MODES = ("auto", "kitty", "sixel", "halfblock", "off")
GRAPHIC_MODES = ("kitty", "sixel")
DEFAULT_CELL = (10, 20)  # pixels; a VT340's cell, what most terminals are near
ANSWER_WAIT_S = 1.0  # at most, for a terminal far away over SSH; a local one answers in ms

# The queries, in the order the answers are expected; DA1 last (see the module's doc).
KITTY_QUERY = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
QUERIES = (KITTY_QUERY
           + "\x1b[>0q"        # XTVERSION: "\x1bP>|kitty(0.26.5)\x1b\\", "\x1bP>|XTerm(379)\x1b\\"
           + "\x1b[?1;1;0S"    # XTSMGRAPHICS: number of colour registers
           + "\x1b[?2;1;0S"    # XTSMGRAPHICS: largest sixel image, in pixels
           + "\x1b[16t"        # cell size in pixels (when the tty's ioctl does not say)
           + "\x1b[c")         # DA1

_KITTY_ANSWER = re.compile(r"\x1b_Gi=31;([^\x1b]*)\x1b\\")
_VERSION_ANSWER = re.compile(r"\x1bP>\|([^\x1b]*)\x1b\\")
_GRAPHICS_ANSWER = re.compile(r"\x1b\[\?([12]);(\d+);(\d+)(?:;(\d+))?S")
_CELL_ANSWER = re.compile(r"\x1b\[6;(\d+);(\d+)t")
_DA1_ANSWER = re.compile(r"\x1b\[\?([0-9;]*)c")


@dataclass(frozen=True)
class Answers:
    """What the terminal said (None: it did not answer that question)."""

    da1: tuple[int, ...] | None = None
    kitty_graphics: bool | None = None
    version: str | None = None  # XTVERSION's text, e.g. "kitty(0.26.5)", "XTerm(379)"
    color_registers: int | None = None
    sixel_max: tuple[int, int] | None = None  # (width, height) in pixels
    cell: tuple[int, int] | None = None  # (width, height) in pixels


def parse_answers(text: str) -> Answers:
    kitty = _KITTY_ANSWER.search(text)
    version = _VERSION_ANSWER.search(text)
    da1 = _DA1_ANSWER.search(text)
    cell = _CELL_ANSWER.search(text)
    registers = sixel_max = None
    for item, status, a, b in _GRAPHICS_ANSWER.findall(text):
        if status != "0":  # 0 is success; 1 "error in item", 2 "unknown action", 3 failure
            continue
        if item == "1":
            registers = int(a)
        elif b:
            sixel_max = (int(a), int(b))
    return Answers(
        da1=tuple(int(p) for p in da1.group(1).split(";") if p.isdigit()) if da1 else None,
        kitty_graphics=(kitty.group(1) == "OK") if kitty else None,
        version=version.group(1) if version else None,
        color_registers=registers,
        sixel_max=sixel_max,
        cell=(int(cell.group(2)), int(cell.group(1))) if cell and int(cell.group(1)) > 0
        and int(cell.group(2)) > 0 else None,
    )


def ask_terminal(fd_in: int, fd_out: int, wait_s: float = ANSWER_WAIT_S) -> str:
    """Send the queries and read the answers until DA1's comes (or `wait_s` passes). The
    terminal is put in no-echo, unbuffered input for the while, and put back."""
    import termios
    import tty

    saved = termios.tcgetattr(fd_in)
    try:
        tty.setcbreak(fd_in, termios.TCSANOW)
        attrs = termios.tcgetattr(fd_in)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(fd_in, termios.TCSANOW, attrs)
        os.write(fd_out, QUERIES.encode())
        got = b""
        deadline = time.monotonic() + wait_s
        while not _DA1_ANSWER.search(got.decode("utf-8", "replace")):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd_in], [], [], left)[0]:
                break
            chunk = os.read(fd_in, 4096)
            if not chunk:
                break
            got += chunk
        return got.decode("utf-8", "replace")
    finally:
        termios.tcsetattr(fd_in, termios.TCSAFLUSH, saved)


def _ioctl_cell(fd: int) -> tuple[int, int] | None:
    """The cell size from the tty's window size in pixels, when the terminal fills it in."""
    import fcntl
    import struct
    import termios

    try:
        rows, cols, xpx, ypx = struct.unpack(
            "HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    if rows and cols and xpx and ypx:
        return xpx // cols, ypx // rows
    return None


@dataclass(frozen=True)
class Choice:
    """How pictures are drawn, and why (`wan-tui doctor` prints both)."""

    mode: str  # kitty | sixel | halfblock | off
    reason: str
    answers: Answers = field(default_factory=Answers)
    cell: tuple[int, int] = DEFAULT_CELL
    colors: int = 256  # sixel: colour registers to use

    @property
    def graphic(self) -> bool:
        return self.mode in GRAPHIC_MODES

    def describe(self) -> str:
        return f"pictures: {self.mode} ({self.reason})"


def _multiplexer(env: dict[str, str]) -> str | None:
    if env.get("TMUX"):
        return "tmux"
    if env.get("STY") or env.get("TERM", "").startswith("screen"):
        return "GNU screen"
    return None


def choose(setting: str, source: str, answers: Answers | None, env: dict[str, str],
           is_tty: bool) -> Choice:
    """The mode for `setting` (one of MODES) given what the terminal answered.
    `source` says where the setting came from, for the reason."""
    answers = answers or Answers()
    cell = answers.cell or DEFAULT_CELL
    # A VT340 has 16 registers; xterm emulating one says so (and more if configured).
    colors = max(2, min(256, answers.color_registers or 256))

    def made(mode: str, reason: str) -> Choice:
        return Choice(mode, reason, answers, cell, colors)

    if setting in GRAPHIC_MODES and sys.platform.startswith("win"):
        return made("halfblock", f"{source}, but Windows' console driver cannot keep "
                    "pictures in step with its cells")
    if setting != "auto":
        return made(setting, source)
    if not is_tty or sys.platform.startswith("win"):
        return made("halfblock", "not a terminal that can be asked")
    box = _multiplexer(env)
    if box:
        return made("halfblock", f"inside {box}, which does not pass graphics through "
                    "unless set up to")
    who = f"{answers.version} " if answers.version else ""
    if answers.kitty_graphics:
        return made("kitty", f"{who}answered kitty's graphics query; pictures placed "
                    "directly at their cells")
    if answers.da1 is not None and 4 in answers.da1:
        size = (f", up to {answers.sixel_max[0]}x{answers.sixel_max[1]} pixels"
                if answers.sixel_max else "")
        return made("sixel", f"{who}lists sixel (4) in its device attributes; "
                    f"{colors} colours{size}")
    if answers.da1 is None:
        return made("halfblock", "the terminal did not answer its device attributes")
    return made("halfblock", f"{who}answers for neither kitty graphics nor sixel")


def setting_from(env: dict[str, str], configured: str | None) -> tuple[str, str]:
    """(setting, where it came from): WAN_TUI_IMAGES wins over the config's `images`."""
    value = env.get("WAN_TUI_IMAGES")
    if value:
        return normalize(value, "WAN_TUI_IMAGES"), f"set by WAN_TUI_IMAGES={value}"
    if configured and configured != "auto":
        return normalize(configured, "images"), f'set by images = "{configured}" in the config'
    return "auto", "auto"


def normalize(value: str, name: str) -> str:
    """One of MODES from what a user wrote ("halfblocks" and "none" are understood)."""
    low = value.strip().lower()
    low = {"halfblocks": "halfblock", "half-block": "halfblock", "none": "off",
           "tgp": "kitty"}.get(low, low)
    if low not in MODES:
        raise ConfigError(f"{name} = {value!r}: choose one of {', '.join(MODES)}")
    return low


def detect(configured: str | None = None, env: dict[str, str] | None = None) -> Choice:
    """Decide how to draw pictures in the terminal on this process's stdin/stdout."""
    env = dict(os.environ if env is None else env)
    setting, source = setting_from(env, configured)
    if setting in ("off", "halfblock"):
        return choose(setting, source, None, env, True)
    stdin, stdout = sys.__stdin__, sys.__stdout__
    is_tty = bool(stdin and stdout and stdin.isatty() and stdout.isatty())
    answers = None
    if is_tty and not sys.platform.startswith("win") and not (
            setting == "auto" and _multiplexer(env)):
        assert stdin is not None and stdout is not None
        try:
            stdout.flush()
            answers = parse_answers(ask_terminal(stdin.fileno(), stdout.fileno()))
        except (OSError, ValueError):  # an odd tty: decide without its answers
            answers = None
        cell = _ioctl_cell(stdout.fileno())
        if answers is not None and cell is not None:
            answers = Answers(answers.da1, answers.kitty_graphics, answers.version,
                              answers.color_registers, answers.sixel_max, cell)
    return choose(setting, source, answers, env, is_tty)


_chosen: list[Choice] = []


def pictures(configured: str | None = None) -> Choice:
    """The process's choice, made on the first call (before the app runs)."""
    if not _chosen:
        _chosen.append(detect(configured))
    return _chosen[0]
