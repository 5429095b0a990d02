"""Choosing how to draw pictures, and the picture layer, without an X display.

The answers parsed here are what the real terminals sent (captured from xterm 379 as a
VT340 and plain, mlterm 3.9.0 and kitty 0.26.5 under Xvfb); the terminal that does not
answer is a real pty nobody reads; `wan-tui doctor` runs as a process.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from tui import termcaps
from tui.app import graphics
from tui.app.picture_layer import PictureLayer, Prepared, Registry, mark
from tui.app.screen_diff import ScreenDiff
from tui.config import ConfigError, load_config

XTERM_VT340 = ("\x1bP>|XTerm(379)\x1b\\\x1b[?1;0;1024S\x1b[?2;0;960;585S"
               "\x1b[?63;1;2;4;6;9;15;16;22;28c")
XTERM_PLAIN = "\x1bP>|XTerm(379)\x1b\\\x1b[?1;3S\x1b[?2;3S\x1b[?64;1;2;6;9;15;16;17;18;21;22;28c"
MLTERM = "\x1b[?1;0;1024S\x1b[?1;3;0S\x1b[6;22;10t\x1b[?63;1;2;3;4;6;7;15;18;22;29c"
KITTY = "\x1b_Gi=31;OK\x1b\\\x1bP>|kitty(0.26.5)\x1b\\\x1b[6;20;9t\x1b[?62;c"


def choose(answers: str | None, env: dict[str, str] | None = None, setting: str = "auto"):
    parsed = termcaps.parse_answers(answers) if answers is not None else None
    return termcaps.choose(setting, "test", parsed, env or {}, True)


def test_what_each_real_terminal_answered_chooses_its_protocol():
    xterm = choose(XTERM_VT340)
    assert xterm.mode == "sixel" and xterm.answers.sixel_max == (960, 585)
    assert xterm.answers.color_registers == 1024 and xterm.colors == 256
    assert "XTerm(379)" in xterm.reason and "sixel" in xterm.reason
    mlterm = choose(MLTERM)
    assert mlterm.mode == "sixel" and mlterm.cell == (10, 22)
    kitty = choose(KITTY)
    assert kitty.mode == "kitty" and kitty.answers.version == "kitty(0.26.5)"
    assert kitty.cell == (9, 20)
    plain = choose(XTERM_PLAIN)
    assert plain.mode == "halfblock" and "neither" in plain.reason


def test_a_vt340s_sixteen_registers_limit_the_colours():
    assert choose("\x1b[?1;0;16S\x1b[?63;4c").colors == 16


def test_tmux_and_screen_get_halfblocks_even_when_the_terminal_outside_has_sixel():
    assert choose(XTERM_VT340, {"TMUX": "/tmp/tmux-0/default,1,0"}).mode == "halfblock"
    assert "tmux" in choose(KITTY, {"TMUX": "x"}).reason
    assert choose(XTERM_VT340, {"STY": "1.pts-0"}).mode == "halfblock"
    assert choose(XTERM_VT340, {"TERM": "screen-256color"}).mode == "halfblock"


def test_no_answer_and_not_a_terminal_get_halfblocks():
    assert choose(None).mode == "halfblock"
    assert "did not answer" in choose(None).reason
    assert termcaps.choose("auto", "x", None, {}, False).mode == "halfblock"


def test_a_forced_mode_is_kept_and_says_where_it_came_from():
    setting, source = termcaps.setting_from({"WAN_TUI_IMAGES": "halfblocks"}, "sixel")
    assert setting == "halfblock" and "WAN_TUI_IMAGES" in source
    setting, source = termcaps.setting_from({}, "kitty")
    assert setting == "kitty" and "config" in source
    assert choose(XTERM_PLAIN, setting="sixel").mode == "sixel"
    assert termcaps.setting_from({}, None) == ("auto", "auto")


def test_a_wrong_images_value_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("WAN_TUI_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="choose one of auto, kitty, sixel, halfblock, off"):
        load_config({"WAN_TUI_IMAGES": "ascii-art"})
    (tmp_path / "config.toml").write_text('images = "sixels please"\n')
    with pytest.raises(ConfigError, match="images = 'sixels please'"):
        load_config({})
    (tmp_path / "config.toml").write_text("images = 3\n")
    with pytest.raises(ConfigError, match="images = 3"):
        load_config({})
    (tmp_path / "config.toml").write_text('images = "Kitty"\n')
    assert load_config({}).images == "kitty"


def test_a_terminal_that_never_answers_costs_at_most_the_wait():
    """A real pty whose other end reads the queries and says nothing."""
    master, slave = pty.openpty()
    heard = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 1024)
            except OSError:
                return
            if not chunk:
                return
            heard.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        started = time.monotonic()
        text = termcaps.ask_terminal(slave, slave, wait_s=0.5)
        took = time.monotonic() - started
    finally:
        os.close(slave)
        os.close(master)
    assert text == "" and took < 5
    assert b"\x1b[c" in heard and b"\x1b_Gi=31" in heard  # the queries were sent
    assert termcaps.choose("auto", "auto", termcaps.parse_answers(text), {}, True).mode \
        == "halfblock"


def test_answers_read_from_a_pty_as_kitty_sends_them():
    master, slave = pty.openpty()

    def answer() -> None:
        got = b""
        while b"\x1b[c" not in got:
            got += os.read(master, 1024)
        os.write(master, KITTY.encode())

    threading.Thread(target=answer, daemon=True).start()
    try:
        text = termcaps.ask_terminal(slave, slave, wait_s=5)
    finally:
        os.close(slave)
        os.close(master)
    assert termcaps.choose("auto", "auto", termcaps.parse_answers(text), {}, True).mode \
        == "kitty"


def test_doctor_says_how_pictures_are_drawn_and_why(tmp_path):
    env = {**os.environ, "WAN_TUI_HOME": str(tmp_path), "WAN_TUI_IMAGES": "sixel"}
    out = subprocess.run([sys.executable, "-m", "tui", "doctor"], env=env,
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "pictures: sixel (set by WAN_TUI_IMAGES=sixel)" in out.stdout
    env.pop("WAN_TUI_IMAGES")
    out = subprocess.run([sys.executable, "-m", "tui", "doctor"], env=env,
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "pictures: halfblock (not a terminal that can be asked)" in out.stdout


# ---------------------------------------------------------------- the picture layer

def screen_with_picture(slot: int, box: tuple[int, int, int, int], size=(30, 12)):
    diff = ScreenDiff(*size)
    x, y, w, h = box
    frame = "".join(f"\x1b[{y + r + 1};{x + 1}H\x1b[48;5;236m{mark(slot) * w}"
                    for r in range(h))
    out = diff.feed("\x1b[1;1Hstatus" + frame)
    assert mark(slot) not in out  # the diff never sends a mark
    return diff


def layer_for(box, active=True, rows_out=None, mode="sixel"):
    registry = Registry()
    x, y, w, h = box
    slot = registry.add(lambda: (x, y, w, h, active))
    source = registry.sources[slot]
    source.prepared = Prepared(w, h, 0, tuple(rows_out or [f"<row{r}>" for r in range(h)]))
    return PictureLayer(mode, registry), slot


def test_rows_are_drawn_where_every_cell_shows_and_text_over_one_stops_its_row():
    box = (10, 2, 8, 4)
    layer, slot = layer_for(box)
    diff = screen_with_picture(slot, box)
    out = layer.update(diff)
    assert all(f"<row{r}>" in out for r in range(4)) and out.startswith("\x1b7")
    assert out.endswith("\x1b8") and "\x1b[?80l" in out
    assert layer.update(diff) == ""  # nothing changed: nothing sent
    diff.feed("\x1b[4;12Hhi")  # text over the picture's second row
    out = layer.update(diff)
    assert "<row1>" not in out and "<row0>" in out and "<row2>" in out


def test_never_a_picture_row_in_the_last_two_rows():
    box = (2, 7, 6, 5)  # rows 7..11 of 12
    layer, slot = layer_for(box)
    out = layer.update(screen_with_picture(slot, box))
    assert "<row0>" in out and "<row2>" in out and "<row3>" not in out
    assert "<row4>" not in out


def test_a_picture_whose_screen_is_covered_is_blanked_and_kitty_placements_go():
    box = (10, 2, 8, 3)
    layer, slot = layer_for(box, rows_out=["<p0>", "<p1>", "<p2>"], mode="kitty")
    source = layer.sources.sources[slot]
    source.prepared = Prepared(8, 3, 0, ("<p0>", "<p1>", "<p2>"), 77, "<data>")
    diff = screen_with_picture(slot, box)
    out = layer.update(diff)
    assert out.count("<data>") == 1 and "<p0>" in out
    source.box = lambda: (10, 2, 8, 3, False)  # a modal screen on top
    out = layer.update(diff)
    assert "a=d,d=i,i=77" in out and "<p0>" not in out and " " * 8 in out
    layer.sources.remove(slot)
    assert "a=d,d=I,i=77" in layer.update(diff)  # the widget went: the image is freed


def test_sixel_rows_fit_their_cells_and_kitty_data_is_chunked():
    image = Image.new("RGB", (100, 50), (200, 200, 20))
    rows = graphics.sixel_rows(image, 20, colors=16)
    assert len(rows) == 3 and all(r.startswith("\x1bP0;1;0q") for r in rows)
    assert '"1;1;100;20' in rows[0] and '"1;1;100;10' in rows[2]
    big = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    sent = graphics.kitty_transmit(5, big)
    assert sent.count("\x1b_G") > 1 and "m=0" in sent.rsplit("\x1b_G", 1)[1]


def test_a_sixel_picture_stays_within_the_geometry_the_terminal_reports():
    from tui.app.picture_layer import prepare

    small = termcaps.choose("auto", "x", termcaps.parse_answers(
        "\x1b[?2;0;120;60S\x1b[?63;4c\x1b[6;20;10t"), {}, True)
    prepared = prepare(Image.new("RGB", (1280, 720), (9, 9, 9)), 40, 11, 0, small)
    sizes = [row.split('"1;1;', 1)[1].split("#", 1)[0] for row in prepared.row_out if row]
    assert all(int(s.split(";")[0]) <= 120 for s in sizes)
    assert sum(int(s.split(";")[1]) for s in sizes) <= 60
