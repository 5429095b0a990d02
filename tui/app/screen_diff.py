"""Send the terminal only the cells that changed, as curses does.

Textual repaints by regions: a changed cell re-sends its line from the start of the widget
it is in, and every run of text carries its full colour codes and a reset. Over SSH a
dashboard whose clocks tick each second then costs tens of KB/s. `ScreenDiff` sits between
Textual and the terminal: it keeps the screen Textual has drawn and the screen the
terminal shows (cell by cell: text and SGR codes), reads each frame Textual writes, and
writes only the cells whose text or style differ, with one SGR code per change of style.

It understands what Textual's frames are made of -- cursor moves, SGR codes, text and line
feeds. Anything else (mode switches, OSC sequences, the bell, a synchronized-update
bracket) passes through untouched; a sequence that may change the screen behind our back
(clearing, the alternate screen) makes every cell unknown, so the next frames send them.
No Textual import: the driver in `diff_driver.py` feeds it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import repeat

from rich.cells import cell_len, get_character_cell_size

UNKNOWN = None  # a cell whose content on the terminal is not known (after a clear, at start)
# A cell of a picture drawn with sixel or kitty graphics: Textual's frame holds a mark there
# (U+F0000 + the picture's slot, Supplementary Private Use Area-A); the diff never sends
# one, the picture layer (picture_layer.py) draws those cells.
MARK_FIRST = 0xF0000
_MARK_LO, _MARK_HI = chr(MARK_FIRST), chr(MARK_FIRST + 0xFFFD)


def is_mark(text: str | None) -> bool:
    return text is not None and _MARK_LO <= text <= _MARK_HI

# One token of Textual's output: a cursor move, an SGR code, a line feed, plain text, or
# another escape sequence (CSI, OSC terminated by BEL or ST, or a two-byte escape).
_TOKEN = re.compile(
    r"\x1b\[(\d*);(\d*)H"                    # 1, 2: cursor move (1-based row; column)
    r"|\x1b\[([0-9;]*)m"                     # 3: SGR
    r"|(\r?\n)"                              # 4: line feed
    r"|([^\x00-\x1f\x7f]+)"                  # 5: text
    r"|(\x1b\[[0-9;?$<=>]*[ -/]*[@-~]"       # 6: any other CSI ...
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"    # ... OSC
    r"|\x1bP.*?\x1b\\"                       # ... DCS (tmux passthrough, sixel)
    r"|\x1b_.*?\x1b\\"                       # ... APC (kitty graphics: thumbnails)
    r"|\x1b[^\[\]P_]"                        # ... two-byte escape
    r"|[\x00-\x1f\x7f])",                    # ... a lone control character
    re.DOTALL,
)
# Private modes that leave the screen's cells alone (cursor, mouse, focus, paste, sync).
_HARMLESS_MODE = re.compile(r"\x1b\[\?[0-9;]*[hl]$")
_SCREEN_MODES = {"47", "1047", "1049"}  # alternate screen: a different page of cells
# Neither do OSC (titles, clipboard, notices, pointer shape), DCS, the bell, queries and
# the keyboard protocol switches.
_HARMLESS = re.compile(r"\x1b\]|\x1bP|\x07$|\x1b\[\?2026\$p$|\x1b\[[0-9]*n$|\x1b\[[0-9;]*c$"
                       r"|\x1b\[[0-9 ]*q$|\x1b\[[<>=][0-9;]*[a-z]$")


@lru_cache(maxsize=4096)
def _one_cell_each(text: str) -> bool:
    """Whether every character of `text` takes one cell (box lines, bars and most symbols
    do; the same runs come in every frame, hence the cache)."""
    return all(get_character_cell_size(ch) == 1 for ch in text)


def _wide(text: str | None) -> bool:
    """A wide character's cell (the cell after it is its right half)."""
    return text is not None and not text.isascii() and cell_len(text) == 2


def _move(x: int, y: int) -> str:
    return f"\x1b[{y + 1};{x + 1}H"


# A cell's look: (attribute codes, foreground, background), as SGR parameter strings.
Look = tuple[frozenset[str], str | None, str | None]
PLAIN: Look = (frozenset(), None, None)
_FLAG_OFF = {"22": ("1", "2"), "23": ("3",), "24": ("4",), "25": ("5",), "27": ("7",),
             "28": ("8",), "29": ("9",)}


def parse_sgr(codes: str, look: Look = PLAIN) -> Look:
    """`look` after the SGR sequence with these parameters."""
    flags, fg, bg = set(look[0]), look[1], look[2]
    parts = codes.split(";") if codes else ["0"]
    n = 0
    while n < len(parts):
        code = parts[n] or "0"
        if code == "0":
            flags, fg, bg = set(), None, None
        elif code in ("38", "48") and n + 1 < len(parts):
            width = 3 if parts[n + 1] == "5" else 5 if parts[n + 1] == "2" else 2
            colour = ";".join(parts[n:n + width])
            n += width - 1
            if code == "38":
                fg = colour
            else:
                bg = colour
        elif code == "39":
            fg = None
        elif code == "49":
            bg = None
        elif code.isdigit() and (30 <= int(code) <= 37 or 90 <= int(code) <= 97):
            fg = code
        elif code.isdigit() and (40 <= int(code) <= 47 or 100 <= int(code) <= 107):
            bg = code
        elif code in _FLAG_OFF:
            flags -= set(_FLAG_OFF[code])
        else:
            flags.add(code)
        n += 1
    return frozenset(flags), fg, bg


def sgr_between(old: Look | None, new: Look) -> str:
    """The shortest plain way from one look to the next: only what changed, or a reset
    and the new look when an attribute has to go."""
    if old == new:
        return ""
    if old is None or old[0] - new[0] or (old[1] and not new[1]) or (old[2] and not new[2]):
        codes = [*sorted(new[0]), *(c for c in new[1:] if c)]
        return f"\x1b[0;{';'.join(codes)}m" if codes else "\x1b[0m"
    codes = sorted(new[0] - old[0])
    if new[1] != old[1]:
        codes.append(new[1])  # type: ignore[arg-type]
    if new[2] != old[2]:
        codes.append(new[2])  # type: ignore[arg-type]
    return f"\x1b[{';'.join(codes)}m"


class ScreenDiff:
    """Two screens of cells: `want` (Textual's) and `have` (the terminal's).

    Each screen is two grids of the same shape, a cell's text and its look, so that
    setting a run of text makes no object per cell (a frame of a full screen of new rows
    would otherwise make thousands, and a garbage collection pass per 700 of them) and a
    whole line compares in C. A cell whose text is None is unknown (its look too).
    """

    def __init__(self, width: int = 0, height: int = 0) -> None:
        self.width = width
        self.height = height
        self.want_text: list[list[str | None]] = []
        self.want_look: list[list[Look | None]] = []
        self.have_text: list[list[str | None]] = []
        self.have_look: list[list[Look | None]] = []
        self._looks: dict[tuple[Look, str], Look] = {}
        self.resize(width, height)

    def _unknown(self) -> tuple[list[list[str | None]], list[list[Look | None]]]:
        return ([[UNKNOWN] * self.width for _ in range(self.height)],
                [[UNKNOWN] * self.width for _ in range(self.height)])

    def resize(self, width: int, height: int) -> None:
        """A new size (or a screen we know nothing about): every cell unknown."""
        self.width, self.height = width, height
        self.want_text, self.want_look = self._unknown()
        self.have_text, self.have_look = self._unknown()

    def forget(self) -> None:
        """The terminal may show anything now (it was cleared, or resized): send all."""
        self.have_text, self.have_look = self._unknown()

    # ------------------------------------------------------------ reading a frame

    def feed(self, data: str) -> str:
        """What to write instead of `data` (Textual's output) to show the same screen."""
        out: list[str] = []
        touched: dict[int, list[int]] = {}  # row -> [first, last + 1] columns written
        x = y = 0
        look = PLAIN
        looks = self._looks
        moved = False  # the output's cursor is wherever the frame's own moves put it
        want_text, want_look = self.want_text, self.want_look
        width, height = self.width, self.height

        def flush_cells() -> None:
            if touched:
                out.append(self._emit(touched))
                touched.clear()

        for match in _TOKEN.finditer(data):
            row, col, codes, newline, text, other = match.groups()
            if text is not None:
                if not 0 <= y < height:
                    continue
                span = touched.get(y)
                start = x
                if text.isascii() or _one_cell_each(text):  # one cell a character: in one go
                    end = min(x + len(text), width)
                    if end > x:
                        want_text[y][x:end] = text[:end - x]
                        want_look[y][x:end] = repeat(look, end - x)
                        x = end
                else:
                    x = self._write(y, x, text, look)
                if span is None:
                    touched[y] = [start, x]
                else:
                    span[0] = min(span[0], start)
                    span[1] = max(span[1], x)
                moved = True
            elif row is not None:
                y = int(row or 1) - 1
                x = int(col or 1) - 1
                moved = True
            elif codes is not None:
                key = (look, codes)
                after = looks.get(key)
                if after is None:
                    after = looks[key] = parse_sgr(codes, look)
                    if len(looks) > 4096:  # a theme change: the old looks are not coming back
                        looks.clear()
                look = after
            elif newline is not None:
                y, x = y + 1, 0
            else:
                assert other is not None
                flush_cells()
                out.append(other)
                if self._may_change_cells(other):
                    self.forget()
        flush_cells()
        if moved:
            out.append(_move(min(x, max(0, width - 1)), max(0, min(y, height - 1))))
        return "".join(out)

    def _write(self, y: int, x: int, text: str, look: Look) -> int:
        """Text with wide characters or combining marks, a character at a time; returns
        the column after it."""
        width = self.width
        texts, looks = self.want_text[y], self.want_look[y]
        for ch in text:
            size = get_character_cell_size(ch) if not ch.isascii() else 1
            if size == 0:  # a combining mark joins the cell before it
                if 0 < x <= width and texts[x - 1] is not None:
                    texts[x - 1] += ch  # type: ignore[operator]
                continue
            if x + size > width:
                break
            texts[x], looks[x] = ch, look
            if size == 2:
                texts[x + 1], looks[x + 1] = "", look  # the right half of a wide character
            x += size
        return x

    @staticmethod
    def _may_change_cells(sequence: str) -> bool:
        if _HARMLESS.match(sequence):
            return False
        if _HARMLESS_MODE.match(sequence):
            return bool(set(sequence[3:-1].split(";")) & _SCREEN_MODES)
        return True

    # ------------------------------------------------------------ writing the difference

    def _emit(self, touched: dict[int, list[int]]) -> str:
        out: list[str] = []
        current: Look | None = None  # the look the terminal writes with now (None: unknown)
        for y in sorted(touched):
            first, last = touched[y]
            wtext, wlook = self.want_text[y], self.want_look[y]
            htext, hlook = self.have_text[y], self.have_look[y]
            if wtext[first:last] == htext[first:last] \
                    and wlook[first:last] == hlook[first:last]:
                continue  # compared in C: most lines of most frames are as they were
            cursor = -1  # where the terminal's cursor is on this line (-1: elsewhere)
            cx = first
            while cx < last:
                text = wtext[cx]
                if text is None or (text == htext[cx] and wlook[cx] == hlook[cx]) \
                        or _MARK_LO <= text <= _MARK_HI:  # a picture's: the layer's to draw
                    cx += 1
                    continue
                if text == "" and cx > 0 and _wide(wtext[cx - 1]):
                    cx -= 1  # the right half of a wide character: write the character
                    text = wtext[cx]
                    assert text is not None
                if cursor != cx:
                    gap = self._gap(wtext, wlook, cursor, cx, current)
                    if gap is None:
                        out.append(_move(cx, y))
                    else:
                        out.append(gap[0])
                        current = gap[1]
                        htext[cursor:cx] = wtext[cursor:cx]
                        hlook[cursor:cx] = wlook[cursor:cx]
                look = wlook[cx]
                assert look is not None
                if look != current:
                    out.append(sgr_between(current, look))
                    current = look
                out.append(text)
                htext[cx], hlook[cx] = text, look
                cursor = cx + 1
                if cursor < len(wtext) and wtext[cursor] == "" and _wide(text):  # its right half
                    htext[cursor], hlook[cursor] = "", wlook[cursor]
                    cursor += 1
                cx = cursor
        if current is not None and current != PLAIN:
            out.append("\x1b[0m")  # what follows (pass-through, the next frame) starts plain
        return "".join(out)

    @staticmethod
    def _gap(wtext: list[str | None], wlook: list[Look | None], cursor: int, target: int,
             current: Look | None) -> tuple[str, Look | None] | None:
        """The unchanged cells between the cursor and the next change, written out, when
        that is shorter than a cursor move (a gap of a few cells usually is)."""
        if cursor < 0 or target - cursor > 6:
            return None
        parts: list[str] = []
        for gx in range(cursor, target):
            text, look = wtext[gx], wlook[gx]
            if text is None or look is None or (text == "" and gx == cursor) \
                    or _MARK_LO <= text <= _MARK_HI \
                    or (_wide(text) and gx + 1 >= target):  # its right half is the change
                return None
            if look != current:
                parts.append(sgr_between(current, look))
                current = look
            parts.append(text)
        written = "".join(parts)
        return (written, current) if len(written) < len(_move(target, 0)) + 2 else None
