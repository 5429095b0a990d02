"""The dashboard in small terminals: columns drop by priority, the footer keeps `?` and `q`,
and the detail pane hides, zooms and resizes. A seeded history, no engine, a frozen clock."""

from __future__ import annotations

import pytest

from tests.test_snapshots import config, ready, seeded_app  # noqa: F401  (config: fixture)
from tui.app.widgets.footer import LazyFooter
from tui.app.widgets.rows import COLUMNS, columns_for


def test_columns_drop_by_priority_and_the_essential_ones_stay():
    everything, _ = columns_for(300)
    assert everything == COLUMNS
    keys = [c.key for c in columns_for(77)[0]]  # an 80-column terminal's table
    assert keys == ["mark", "id", "state", "prompt", "progress"]
    for width in range(40, 300, 7):  # never sideways: what stays fits, prompt included
        shown, prompt = columns_for(width)
        assert {"id", "state", "prompt", "progress"} <= {c.key for c in shown}
        fits = sum(c.width + 2 for c in shown if c.key != "prompt") + prompt + 2
        assert fits <= width or all(c.drop == 0 for c in shown)


def footer_keys(app) -> list[str]:
    return [w.key_display for w in app.query_one(LazyFooter).children
            if hasattr(w, "key_display")]


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
async def test_every_row_shows_id_state_progress_and_prompt(config, size):  # noqa: F811
    app = seeded_app(config)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        await pilot.pause(0.2)
        table = app.table
        lines = [table.render_line(y).text for y in range(table.scrollable_content_region.height)]
        assert lines[0].split() == ["#", "state", *(
            c.label for c in table.columns if c.key not in ("mark", "id", "state"))]
        row = next(line for line in lines if "Rain on a neon" in line)  # its prompt...
        assert " 6 " in row and "processing" in row and "overdue" in row  # ...#, state, progress
        assert table.virtual_size.width <= table.scrollable_content_region.width
        assert [c.key for c in table.columns][:3] == ["mark", "id", "state"]
        keys = footer_keys(app)
        assert "?" in keys and "q" in keys
        if size == (80, 24):
            assert "o" not in keys  # dropped so that ? and q fit


async def test_z_hides_and_zooms_the_detail_and_plus_minus_resize_it(config):  # noqa: F811
    app = seeded_app(config)
    async with app.run_test(size=(100, 40)) as pilot:
        await ready(pilot)
        table, detail = app.table, app.detail
        split = (table.size.height, detail.size.height)
        await pilot.press("z")  # the table alone
        await pilot.pause(0.1)
        assert not detail.display and table.size.height > split[0]
        await pilot.press("z")  # the detail alone, focused
        await pilot.pause(0.1)
        assert not table.display and detail.display and app.focused is detail
        await pilot.press("z")  # both again
        await pilot.pause(0.1)
        assert (table.size.height, detail.size.height) == split
        await pilot.press("escape", "plus", "plus")
        await pilot.pause(0.1)
        assert detail.size.height > split[1] and table.size.height < split[0]
        await pilot.press(*["minus"] * 10)  # stops at its smallest share
        await pilot.pause(0.1)
        assert app.detail_share == 2 and detail.size.height < split[1]
