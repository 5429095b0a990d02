"""Pictures in real terminals: xterm as a VT340 and mlterm (sixel), Debian's kitty 0.26 (the
graphics protocol without Unicode placeholders), and the half-block fallbacks.

Each test runs `wan-tui demo` in a real emulator under its own Xvfb, like a user: waits
for the jobs to settle, moves between finished jobs, puts a toast, a modal and the gallery
over a picture, resizes the window; after each step the terminal's own text dump must be
exactly the screen the app believes it drew (so row 1 is the status line, the last row
the footer, nothing scrolled, no stray rows), no cell may hold a mark or kitty's
placeholder, and a screenshot of the display must show the picture where one is drawn
and none where it left (a sixel left behind would be invisible to a text dump).
"""

from __future__ import annotations

import os
import shutil
import time
from itertools import zip_longest
from pathlib import Path

import pytest

from tests.real_terminals import (
    MARKS,
    Display,
    Terminal,
    picture_columns,
    same_row,
    text_of,
    yellow_rows,
)

pytestmark = pytest.mark.timeout(420)

STATUS_WORDS = ("batch #", "today", "here since", "follows")  # what the status line says
ACTIVE = ("pending", "submitting", "queued", "processing", "downloading")
SHOTS = os.environ.get("WAN_TUI_SHOTS")  # a folder: keep the screenshots there


@pytest.fixture
def display(tmp_path):
    shown = Display(tmp_path)
    try:
        yield shown
    finally:
        shown.close()


@pytest.fixture
def open_terminal(display, tmp_path):
    opened: list[Terminal] = []

    def start(kind: str, **kw) -> Terminal:
        term = Terminal(kind, display, tmp_path, **kw)
        opened.append(term)
        return term

    try:
        yield start
    finally:
        for term in opened:
            term.close()


def agree(term: Terminal, what: str, tries: int = 10) -> list[str]:
    """The terminal's dump equals a screen the app sent while the dump was taken (a clock
    ticking meanwhile gives several). Returns the rows."""
    last = ""
    for _ in range(tries):
        term.wait_quiet()  # just after a frame the terminal may still be drawing it
        dump, beliefs = term.dump_with_beliefs()
        got = [r.rstrip() for r in dump]
        for row in dump:
            assert not MARKS.search(row), f"{what}: a mark or placeholder on screen: {row!r}"
        for belief in beliefs:
            (width, height), _, rows = belief
            want = [text_of(r) for r in rows]
            if len(got) == len(rows) and all(
                    same_row(term.kind, r, g) for r, g in zip(rows, got, strict=True)):
                assert len(got) == height
                assert any(w in got[0] for w in STATUS_WORDS), \
                    f"{what}: row 1 is not the status line: {got[0]!r}"
                assert "help" in got[-1] and "quit" in got[-1], \
                    f"{what}: the last row is not the footer: {got[-1]!r}"
                return got
            last = f"{len(got)} rows shown, {len(rows)} sent\n" + "\n".join(
                f"{n + 1:2} app  {w!r}{picture_at(r)}\n   term {g!r}" for n, (w, g, r) in
                enumerate(zip_longest(want, got, rows, fillvalue="")) if w != g)
        time.sleep(0.3)
    raise AssertionError(f"{term.kind}, {what}: the terminal's screen is not the app's:\n"
                         f"{last}")


def picture_at(row: str) -> str:
    """Where a row of the app's screen holds picture cells, for a failure's message."""
    span = picture_columns(row)
    return f" (picture in columns {span[0] + 1}-{span[1]})" if span else ""


def shot(term: Terminal, name: str):
    path = term.tmp / f"{name}.png"
    image = term.display.screenshot(path)
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SHOTS) / f"{name}.png")
    return image


def has_picture(rows: list[str], graphic: bool) -> bool:
    return any(MARKS.search(r) for r in rows) if graphic else any("▀" in r for r in rows)


def draws(term: Terminal) -> int:
    got = term.belief()
    return got[1] if got else 0


def wait_picture(term: Terminal, graphic: bool, what: str, after: int = -1) -> None:
    """Until the app's screen holds a picture (and, with graphics, has drawn one more
    than `after` pictures)."""
    term.wait_belief(lambda b: has_picture(b[2], graphic) and (not graphic or b[1] > after),
                     what=what)
    time.sleep(0.5)  # the frame after it (the terminal draws what it was sent)


def settle(term: Terminal) -> None:
    term.wait_belief(lambda b: "✔ done" in "".join(b[2])
                     and not any(a in r for r in b[2][2:12] for a in ACTIVE), timeout=120,
                     what="all demo jobs settled")
    term.key("G")  # the oldest job: a finished one with a video


def first_picture(term: Terminal, graphic: bool, label: str):
    """Settled, on a finished job, its picture shown: the screenshot."""
    settle(term)
    wait_picture(term, graphic, "a picture in the detail pane")
    agree(term, "a finished job's picture")
    image = shot(term, f"detail-{label}")
    assert yellow_rows(image) >= 10, "no picture on the display"
    return image


def walk(term: Terminal, graphic: bool, label: str) -> None:
    """The user's walk, checked at every step."""
    first_picture(term, graphic, label)

    n = draws(term)
    term.key("k")  # the next finished job: another picture in its place
    wait_picture(term, graphic, "the next job's picture", after=n)
    agree(term, "moved to another finished job")

    term.key("k", "k")  # #4 expired: no picture; the last one must leave no trace
    term.wait_belief(lambda b: not has_picture(b[2], graphic) and "expired" in "".join(b[2]),
                     what="an expired job without a picture")
    time.sleep(0.5)
    agree(term, "a job without a picture")
    assert yellow_rows(shot(term, f"no-picture-{label}")) == 0, \
        "a picture stayed on the display after it left the screen"

    n = draws(term)  # before the key: a picture drawn before a later read would be missed
    term.key("G")
    wait_picture(term, graphic, "the picture again", after=n)
    term.key("y")  # copy the path: a toast over the picture
    term.wait_belief(lambda b: any("copied:" in r for r in b[2]), what="the toast")
    time.sleep(0.5)
    agree(term, "a toast over the picture")

    term.key("question")  # a modal over everything
    term.wait_belief(lambda b: any("filter: state:failed" in r for r in b[2]),
                     what="the help screen")
    time.sleep(0.5)
    agree(term, "the help modal over a picture")
    if graphic:
        assert yellow_rows(shot(term, f"help-{label}")) == 0, "a picture over the modal"
    n = draws(term)
    term.key("Escape")
    wait_picture(term, graphic, "the picture after the modal", after=n)
    agree(term, "the modal closed")
    assert yellow_rows(shot(term, f"after-help-{label}")) >= 10

    n = draws(term)
    term.key("v")  # the gallery of finished jobs, thumbnails drawn
    term.wait_belief(lambda b: any("finished jobs ·" in r for r in b[2])
                     and (not graphic or b[1] > n + 1), what="the gallery's pictures")
    time.sleep(1.0)
    agree(term, "the gallery")
    assert yellow_rows(shot(term, f"gallery-{label}")) >= 10
    n = draws(term)
    term.key("Escape")
    wait_picture(term, graphic, "the detail picture after the gallery", after=n)
    agree(term, "the gallery closed")

    size = term.belief()[0]  # type: ignore[index]
    win = term.window()
    assert win
    geometry = shot(term, f"before-resize-{label}").size
    assert geometry
    term.resize(820, 560)
    term.wait_belief(lambda b: b[0] != size, what="the new size")
    time.sleep(1.5)
    rows = agree(term, "after a resize")
    assert len(rows) < size[1]


def test_xterm_vt340_draws_sixel_that_never_scrolls(open_terminal):
    term = open_terminal("xterm")
    walk(term, graphic=True, label="xterm-sixel")


def test_mlterm_draws_sixel(open_terminal):
    term = open_terminal("mlterm")
    walk(term, graphic=True, label="mlterm-sixel")


def test_kitty_026_draws_with_placements_not_placeholders(open_terminal):
    term = open_terminal("kitty")
    walk(term, graphic=True, label="kitty")


def test_xterm_without_sixel_falls_back_to_halfblocks(open_terminal):
    term = open_terminal("xterm", vt340=False)  # plain xterm: DA1 without 4
    walk(term, graphic=False, label="xterm-halfblock")


def test_forced_halfblocks_in_a_sixel_terminal(open_terminal):
    term = open_terminal("xterm", images="halfblock")
    walk(term, graphic=False, label="xterm-forced-halfblock")


def test_inside_tmux_pictures_are_halfblocks(open_terminal):
    term = open_terminal("xterm", tmux=True)  # a sixel terminal, but tmux in between
    walk(term, graphic=False, label="xterm-tmux")


@pytest.mark.parametrize("kind", ["xterm", "mlterm"])
def test_sixel_lands_on_its_cells_whatever_sixel_scrolling_mode_was_left_in(
        open_terminal, kind):
    """DECSET 80 (sixel display mode) left on by another program: set, xterm and mlterm
    would draw at the screen's top-left corner. The layer resets it before each draw."""
    term = open_terminal(kind, preamble="\\033[?80h")
    image = first_picture(term, graphic=True, label=f"{kind}-decsdm")
    width, height = image.size
    left_top = image.crop((0, 0, width // 3, height // 3))
    assert yellow_rows(left_top) == 0, "the picture was drawn at the top-left corner"


def test_pictures_off_draws_none(open_terminal):
    term = open_terminal("xterm", images="off")
    settle(term)
    term.wait_belief(lambda b: any("sha256" in r for r in b[2]), what="a finished job")
    time.sleep(2.0)
    rows = agree(term, "no pictures")
    belief = term.belief()
    assert belief is not None and belief[1] == 0
    assert not any(MARKS.search(r) or "▀" in r for r in belief[2] + rows)
    assert yellow_rows(shot(term, "xterm-off")) == 0
