"""Media in the dashboard, against the simulator: facts and ⚠ in the table and the detail
pane, the picture, playing a clip, the gallery."""

from __future__ import annotations

from pathlib import Path

from test_app import dashboard, on_screen, req, settle, until

from tui.app.screens.gallery import Card, GalleryScreen
from tui.app.screens.player import PlayerScreen, play_size
from tui.app.widgets.picture import halfblock_strips
from tui.jobs import JobState


async def test_detail_shows_the_facts_the_shortfall_and_the_picture(sim):
    requests = [req("[sim:less] a short cheap clip", duration="10s", resolution="1080p",
                    audio=True), req("a full clip", resolution="720p")]
    async with dashboard(sim, requests) as (app, pilot, facade):
        await settle(app, pilot, facade, [1, 2])
        table = app.table
        assert "⚠" in str(table.get_cell("1", "state"))
        assert "⚠" not in str(table.get_cell("2", "state"))
        await pilot.press("j")  # the table is newest first: onto job 1
        await until(pilot, lambda: app.detail.job is not None and app.detail.job.id == 1,
                    what="detail of job 1")
        text = app.detail.plain()
        assert "320x180 · 5.0 s · 5 fps · h264, no audio" in text
        assert "asked 1080p, got 320x180" in text and "asked for audio, got none" in text
        await until(pilot, lambda: app.detail.picture_of == 1, what="the picture")
        assert facade.thumb_path(1).exists()
        await pilot.press("k")
        await until(pilot, lambda: app.detail.picture_of == 2, what="the other picture")
        text = app.detail.plain()
        assert "1280x720" in text and "asked" not in text


async def test_no_picture_for_an_unfinished_or_undecodable_job(sim):
    async with dashboard(sim, [req("[sim:undecodable] broken")]) as (app, pilot, facade):
        await settle(app, pilot, facade, [1], JobState.FAILED)
        await until(pilot, lambda: app.detail.job is not None
                    and app.detail.job.state == JobState.FAILED, what="detail")
        assert "decoding failed" in app.detail.plain()
        assert app.detail.picture_of is None and not facade.thumb_path(1).exists()
        await pilot.press("w")  # nothing to play: a toast, no player
        await until(pilot, lambda: any("no finished video" in m for _, m in app.notices),
                    what="the refusal")
        assert not isinstance(app.screen, PlayerScreen)


async def test_play_draws_successive_frames_and_esc_stops(sim):
    async with dashboard(sim, [req("play me")]) as (app, pilot, facade):
        await settle(app, pilot, facade, [1])
        await pilot.press("w")
        await until(pilot, lambda: on_screen(app, PlayerScreen), what="the player")
        player = app.screen
        seen: list[tuple[int, tuple]] = []

        def record() -> bool:
            view = player.picture
            if view.frame_index >= 0 and (not seen or seen[-1][0] != view.frame_index):
                pixels = tuple(str(seg.style) for strip in view.strips for seg in strip)
                seen.append((view.frame_index, pixels))
            return len(seen) >= 4 or player.ended

        await until(pilot, record, 30, "frames")
        indexes = [i for i, _ in seen]
        assert len(indexes) >= 4 and indexes == sorted(indexes)  # successive, in order
        assert len({pixels for _, pixels in seen}) == len(seen)  # the bars move: new pictures
        cols, rows = player.picture.cols, player.picture.rows
        assert (cols, rows) == (64, 18)  # 320x180 played at 64x36 pixels: 64x18 cells
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, PlayerScreen), what="closed")


def test_play_size_keeps_the_aspect_within_the_cap():
    assert play_size(1920, 1080, 200, 60) == (64, 36)
    assert play_size(1080, 1920, 200, 60) == (20, 36)  # portrait: limited by the rows
    assert play_size(320, 180, 40, 10) == (36, 20)


def test_halfblocks_put_two_pixels_in_a_cell():
    red, blue = bytes((255, 0, 0)), bytes((0, 0, 255))
    strips = halfblock_strips(red * 2 + blue * 2, 2, 2)  # 2x2 pixels: one row of cells
    assert len(strips) == 1 and strips[0].text == "▀▀"
    style = list(strips[0])[0].style
    assert style.color.triplet == (248, 0, 0) and style.bgcolor.triplet == (0, 0, 248)


async def test_gallery_follows_the_filter_and_enter_opens_the_job(sim):
    requests = [req("a cat on a piano"), req("a dog in the rain"), req("a cat in the snow"),
                req("a cat that fails [sim:policy]")]
    async with dashboard(sim, requests) as (app, pilot, facade):
        await settle(app, pilot, facade, [1, 2, 3])
        await settle(app, pilot, facade, [4], JobState.FAILED)
        await pilot.press("v")
        await until(pilot, lambda: on_screen(app, GalleryScreen), what="gallery")
        assert [c.job.id for c in app.screen.cards] == [3, 2, 1]  # finished only, newest first
        await until(pilot, lambda: all(c.loaded for c in app.screen.cards), what="pictures")
        assert all(Path(facade.thumb_path(i)).exists() for i in (1, 2, 3))
        await pilot.press("escape")
        await pilot.press("slash", *"cat", "enter")
        await until(pilot, lambda: set(app.table.order) == {1, 3, 4}, what="filtered")
        await pilot.press("v")
        await until(pilot, lambda: on_screen(app, GalleryScreen), what="gallery")
        gallery = app.screen
        assert [c.job.id for c in gallery.cards] == [3, 1]
        await pilot.press("right")
        assert isinstance(gallery.focused, Card) and gallery.focused.job.id == 1
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, GalleryScreen), what="closed")
        await until(pilot, lambda: app.table.current_id == 1 and app.detail.job is not None
                    and app.detail.job.id == 1, what="job 1 opened")


def test_kitty_graphics_pass_through_the_cell_diff_whole():
    from tui.app.screen_diff import ScreenDiff

    diff = ScreenDiff(10, 1)
    apc = "\x1b_Ga=T,f=100,i=7;iVBORw0KGgo=\x1b\\"  # an image upload: not text for any cell
    out = diff.feed("\x1b[1;1H" + apc + "ab")
    assert apc in out and out.endswith("ab\x1b[1;3H")
    assert diff.feed("\x1b[1;1Hab") == "\x1b[1;3H"  # the cells are known: nothing resent
