"""Sending only the changed cells shows the same screen as sending everything Textual wrote.

A real terminal emulator (pyte) reads both streams: Textual's frames as they are, and the
same frames through ScreenDiff. The frames come from the real dashboard (seeded history,
keys pressed, a modal, toasts), encoded as a terminal driver would write them.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import pyte
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console
from textual.widgets import Input

from tests.test_snapshots import config, ready, seeded_app  # noqa: F401  (config: fixture)
from tui.app import app as app_module
from tui.app.app import WanApp
from tui.app.screen_diff import PLAIN, ScreenDiff, parse_sgr, sgr_between

W, H = 100, 30


def emulator() -> tuple[pyte.Screen, pyte.ByteStream]:
    screen = pyte.Screen(W, H)
    return screen, pyte.ByteStream(screen)


def cells(screen: pyte.Screen) -> list[list[tuple]]:
    return [[(c.data, c.fg, c.bg, c.bold, c.reverse, c.italics, c.underscore)
             for c in (screen.buffer[y][x] for x in range(W))] for y in range(H)]


def test_one_changed_character_costs_a_move_and_the_character():
    diff = ScreenDiff(20, 2)
    first = diff.feed("\x1b[1;1H\x1b[38;5;81;48;5;235mETA 1m10s\x1b[0m\x1b[2;1H")
    assert "ETA 1m10s" in first
    again = diff.feed("\x1b[1;1H\x1b[38;5;81;48;5;235mETA 1m09s\x1b[0m\x1b[2;1H")
    assert again == "\x1b[1;7H\x1b[0;38;5;81;48;5;235m09\x1b[0m\x1b[2;1H"
    assert diff.feed("\x1b[1;1H\x1b[38;5;81;48;5;235mETA 1m09s\x1b[0m\x1b[2;1H") \
        == "\x1b[2;1H"  # nothing changed: only the cursor goes back where Textual left it


def test_a_change_of_colour_sends_only_the_colour_that_changed():
    old = parse_sgr("1;38;2;1;2;3;48;2;9;9;9")
    new = parse_sgr("1;38;2;4;5;6;48;2;9;9;9")
    assert sgr_between(old, new) == "\x1b[38;2;4;5;6m"
    assert sgr_between(new, parse_sgr("38;2;4;5;6;48;2;9;9;9")) == "\x1b[0;38;2;4;5;6;48;2;9;9;9m"
    assert sgr_between(new, PLAIN) == "\x1b[0m"


def test_a_clear_behind_our_back_makes_every_cell_go_out_again():
    diff = ScreenDiff(10, 1)
    diff.feed("\x1b[1;1Habc")
    out = diff.feed("\x1b[2J")  # not a frame: passed through, and the terminal is blank now
    assert out == "\x1b[2J"
    assert "abc" in diff.feed("\x1b[1;1Habc")
    assert diff.feed("\x1b]52;c;YWJj\x07") == "\x1b]52;c;YWJj\x07"  # the clipboard: no change
    assert diff.feed("\x1b[1;1Habc") == "\x1b[1;4H"


def test_wide_characters_and_mode_switches_keep_the_screens_equal():
    raw_screen, raw = emulator()
    diffed_screen, diffed = emulator()
    diff = ScreenDiff(W, H)
    frames = [
        "\x1b[?1049h\x1b[?25l",
        "\x1b[1;1H\x1b[31m⌛ expired\x1b[0m  ✔ done\x1b[2;1Hsecond line",
        "\x1b[1;1H\x1b[33m◐ waiting\x1b[0m  ✔ done",
        "\x1b[1;3H\x1b[32mx\x1b[0m",  # over the right half of where a wide character was
        "\x1b[?2026h\x1b[2;1Hsecond lime\x1b[?2026l",
    ]
    for frame in frames:
        raw.feed(frame.encode())
        diffed.feed(diff.feed(frame).encode())
        assert cells(diffed_screen) == cells(raw_screen)


# What Textual writes: a cursor move, a look, and a run of text that fits on the line --
# ASCII, one-cell symbols (boxes, bars), wide characters, and a letter with a combining mark.
UNITS = ["a", "b", " ", "|", "─", "╭", "█", "▁", "✔", "◐", "⌛", "漢", "字", "e\u0301"]
LOOKS = ["0", "1", "31", "38;5;81;48;5;235", "7", "4;31", "2", "1;38;2;1;2;3"]
WRITES = st.tuples(st.integers(0, 5), st.integers(0, 15), st.sampled_from(LOOKS),
                   st.lists(st.sampled_from(UNITS), min_size=1, max_size=10).map("".join))


def frame_of(writes: list[tuple[int, int, str, str]], width: int) -> str:
    """The writes as one frame. Like Textual's, each run ends with a reset, none goes past
    the line's end, and no two runs of a frame overlap (a later frame may write over any
    part of an earlier one)."""
    parts = []
    written: set[tuple[int, int]] = set()
    for y, x, look, run in writes:
        # (pyte wraps before a combining mark in the last column; terminals do not)
        while run and (x + cell_len(run) > width
                       or (x + cell_len(run) == width and unicodedata.combining(run[-1]))):
            run = run[:-1]
        cells = {(y, col) for col in range(x, x + cell_len(run))}
        if run and not cells & written:
            written |= cells
            parts.append(f"\x1b[{y + 1};{x + 1}H\x1b[{look}m{run}\x1b[0m")  # as Textual ends a run
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(WRITES, max_size=8), min_size=1, max_size=5))
def test_any_frames_look_the_same_through_the_diff(frames):
    """However runs of text overlap from frame to frame (wide characters cut in half, marks
    joining a cell), a real terminal emulator shows through the diff what it would show
    with every frame sent whole."""
    width, height = 16, 6
    raw_screen, diffed_screen = pyte.Screen(width, height), pyte.Screen(width, height)
    raw, diffed = pyte.ByteStream(raw_screen), pyte.ByteStream(diffed_screen)
    diff = ScreenDiff(width, height)
    for writes in frames:
        frame = frame_of(writes, width)
        raw.feed(frame.encode())
        diffed.feed(diff.feed(frame).encode())
        assert shown(diffed_screen) == shown(raw_screen)


def shown(screen: pyte.Screen) -> list[list[object]]:
    """The cells as a terminal shows them. pyte keeps the right half of a wide character
    whose left half was written over; a terminal (xterm, tmux) blanks it: so does this."""
    rows = []
    for y in range(screen.lines):
        line = screen.buffer[y]
        row: list[object] = []
        for x in range(screen.columns):
            cell = line[x]
            orphan = cell.data == "" and (x == 0 or cell_len(line[x - 1].data) != 2)
            row.append(screen.default_char if orphan else cell)
        rows.append(row)
    return rows


class Recording(WanApp):
    """The dashboard, its frames encoded as a terminal driver writes them."""

    CSS_PATH = str(Path(app_module.__file__).with_name("app.tcss"))  # not relative to tests/

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[str] = []
        self._encoder = Console(width=W, height=H, file=io.StringIO(), force_terminal=True,
                                color_system="256", legacy_windows=False, safe_box=False)

    def _display(self, screen, renderable) -> None:
        # Textual's own method returns early when headless, before encoding the update.
        super()._display(screen, renderable)
        if renderable is not None and not self._batch_count \
                and hasattr(renderable, "render_segments"):
            self.frames.append(renderable.render_segments(self._encoder))


async def test_the_dashboards_own_frames_look_the_same_through_the_diff(config):  # noqa: F811
    app = seeded_app(config, cls=Recording)
    assert app.get_driver_class().__name__.startswith("Diff")  # what a real terminal gets
    async with app.run_test(size=(W, H)) as pilot:
        await ready(pilot)
        await pilot.press("j", "j", "k", "G", "g")
        await pilot.press("slash", *"fox", "enter")
        await pilot.pause(0.3)
        await pilot.press("escape", "question_mark")
        await pilot.pause(0.2)
        await pilot.press("escape")
        app.toast("a toast over the table")
        await pilot.pause(0.3)
    raw_screen, raw = emulator()
    diffed_screen, diffed = emulator()
    diff = ScreenDiff(W, H)
    raw_bytes = diffed_bytes = 0
    assert len(app.frames) > 10
    for frame in app.frames:
        out = diff.feed(frame)
        raw.feed(frame.encode())
        diffed.feed(out.encode())
        raw_bytes += len(frame.encode())
        diffed_bytes += len(out.encode())
        assert cells(diffed_screen) == cells(raw_screen)
    assert diffed_bytes < raw_bytes / 2


async def test_after_each_change_of_focus_the_terminal_shows_a_full_repaint(config):  # noqa: F811
    """The dashboard's screen does not repaint every cell when the focus moves: what the
    focus changes (borders, the table's cursor, the footer's keys) must still reach the
    terminal. After each step, the screen built from the frames sent (through the diff)
    equals a fresh full render of the same moment."""
    app = seeded_app(config, cls=Recording)
    steps = [("slash",), tuple("fo"), ("escape",), ("enter",), ("escape",), ("slash",),
             ("enter",), ("f",), ("escape",)]
    async with app.run_test(size=(W, H)) as pilot:
        await ready(pilot)
        for line in app.query(Input):  # a blink between the last frame and the check
            line.cursor_blink = False
        screen, stream = emulator()
        diff = ScreenDiff(W, H)
        sent = 0
        for keys in steps:
            await pilot.press(*keys)
            await pilot.pause(0.3)
            for frame in app.frames[sent:]:
                stream.feed(diff.feed(frame).encode())
            sent = len(app.frames)
            full_screen, full_stream = emulator()
            update = app.screen._compositor.render_full_update()
            full_stream.feed(update.render_segments(app._encoder).encode())
            assert cells(screen) == cells(full_screen), keys
