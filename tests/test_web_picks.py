"""Picks in the dashboard (the other half of the web gallery's s / x): `*` stars and `x`
rejects the selected or marked jobs, the row's first cell and the detail pane show it, the
filter finds it, and a pick written by another process (the gallery) reaches the table.

Against the simulator on a real loopback socket, like test_app."""

from __future__ import annotations

from test_app import dashboard, req, settle, until

from tui.store import open_store


def mark_cell(app, job_id: int) -> str:
    return app.table.get_cell(str(job_id), "mark").plain


async def test_star_and_reject_from_the_dashboard(sim):
    requests = [req("take one of a fox"), req("take two of a fox"), req("take three")]
    async with dashboard(sim, requests) as (app, pilot, facade):
        table = app.table
        await settle(app, pilot, facade, [1, 2, 3])
        assert table.current_id == 3
        await pilot.press("asterisk")
        await until(pilot, lambda: mark_cell(app, 3) == "★", 5, "the star in the row")
        job = await facade.get(3)
        assert job.pick == "star" and job.picked_at is not None
        await until(pilot, lambda: "★ star" in app.detail.plain(), 5, "the pick in the detail")
        await pilot.press("j", "x")
        await until(pilot, lambda: mark_cell(app, 2) == "✘", 5, "the reject in the row")
        assert (await facade.get(2)).pick == "reject"
        # marked rows take the pick together; the mark shows until it is cleared
        await pilot.press("k", "space", "j", "j", "space")
        assert set(table.targets()) == {3, 1}
        await pilot.press("asterisk")  # 3 is starred already, 1 is not: both become stars
        await until(pilot, lambda: mark_cell(app, 1) == "★", 5, "the marked row starred")
        assert [(await facade.get(n)).pick for n in (1, 2, 3)] == ["star", "reject", "star"]
        # the same key again on a starred job clears it
        await pilot.press("g")
        await until(pilot, lambda: table.current_id == 3, 5, "top")
        await pilot.press("asterisk")
        await until(pilot, lambda: mark_cell(app, 3) == " ", 5, "the star cleared")
        assert (await facade.get(3)).pick is None
        events = [e.detail for e in await facade.events(3)]
        assert events[-2:] == ["picked: star", "pick cleared"]
        await pilot.press("slash", *"pick:star", "enter")
        await until(pilot, lambda: table.order == [1], 5, "pick:star")
        await pilot.press("slash", "ctrl+u", *"pick:none", "enter")
        await until(pilot, lambda: table.order == [3], 5, "pick:none")
        await pilot.press("slash", "ctrl+u", *"pick:reject fox", "enter")
        await until(pilot, lambda: table.order == [2], 5, "pick:reject and words")


async def test_a_pick_from_the_gallery_reaches_the_table(sim):
    async with dashboard(sim, [req("a lighthouse"), req("a kettle")]) as (app, pilot, facade):
        await settle(app, pilot, facade, [1, 2])
        # `wan-tui serve` writes picks through its own connection, as another process does
        other = await open_store(facade.config.history)
        try:
            await other.set_pick(1, "reject")
        finally:
            await other.close()
        # a window that is the engine reads others' rows at its resync (every 10 s)
        await until(pilot, lambda: mark_cell(app, 1) == "✘", 15, "the gallery's pick")
        assert app.table.jobs[1].pick == "reject"
