"""Habits from k9s, lazygit and htop: find with n/N, sort by a chosen column and reverse
it, go to a job by number, copy a job's remote id or prompt, a theme from the config.
A seeded history (jobs #1-#9, newest first), no engine."""

from __future__ import annotations

from tests.test_app import until
from tests.test_snapshots import config, ready, seeded_app  # noqa: F401  (config: fixture)
from tui.app.widgets.prompt_bar import PromptBar


async def until_true(pilot, check, what: str) -> None:
    """test_app's `until` (by the wall, at least its floor of 30 s): a loaded machine only
    makes it slower."""
    await until(pilot, check, what=what)


async def test_find_moves_the_cursor_and_n_N_go_between_matches(config):  # noqa: F811
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        table = app.table
        assert table.current_id == 9
        await pilot.press("f", *"lighthouse", "enter")  # #9 and #4 have the word
        await until_true(pilot, lambda: table.current_id == 4, "the next match")
        assert not app.query_one(PromptBar).display and app.focused is table
        await pilot.press("n")  # past the last match: around to the first
        await until_true(pilot, lambda: table.current_id == 9, "around")
        await pilot.press("N")
        await until_true(pilot, lambda: table.current_id == 4, "back")
        assert "find 'lighthouse'" in table.border_title
        await pilot.press("escape")  # the search ends: n is a new job again
        assert app.find_term is None
        await pilot.press("f", *"zzz", "enter")
        await until_true(pilot, lambda: any("no job's prompt" in m for _, m in app.notices),
                         "no match said")


async def test_go_to_sort_reverse_and_copy(config):  # noqa: F811
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        table = app.table
        await pilot.press("number_sign", "2", "enter")
        await until_true(pilot, lambda: table.current_id == 2, "job #2")
        await pilot.press("number_sign", *"77", "enter")
        await until_true(pilot, lambda: any("no job #77" in m for _, m in app.notices),
                         "no such job")
        await pilot.press("I")  # oldest first
        await until_true(pilot, lambda: table.order[:3] == [1, 2, 3], "reversed")
        assert "↑" in table.border_title
        await pilot.press("I", "greater_than_sign")  # the column after "created": state
        await until_true(pilot, lambda: table.sort_by == "state", "sorted by state")
        await pilot.press("less_than_sign")
        await until_true(pilot, lambda: table.sort_by == "created", "back to created")
        await pilot.press("number_sign", "1", "enter")
        await until_true(pilot, lambda: table.current_id == 1, "job #1")
        await pilot.press("Y", "p")
        sent = list(app.terminal.sent)
        assert "osc52:q-003600" in sent  # its remote id
        assert "osc52:A red fox trots through fresh snow at dawn, low tracking shot" in sent


async def test_theme_comes_from_the_config(config):  # noqa: F811
    config.theme = "nord"
    app = seeded_app(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        assert app.theme == "nord"


def test_theme_setting_is_read_from_config_toml():
    import os
    from pathlib import Path

    from tui.config import load_config

    probe = load_config()
    probe.config_file.parent.mkdir(parents=True, exist_ok=True)
    probe.config_file.write_text('theme = "gruvbox"\n')
    os.chmod(probe.config_file, 0o600)
    assert load_config().theme == "gruvbox"
    assert Path(probe.config_file).read_text().startswith("theme")


async def test_a_remap_that_takes_another_bindings_key_is_reported(config):  # noqa: F811
    config.keymap = {"quote": "ctrl+q", "nonsense": "x"}
    app = seeded_app(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        warnings = [m for s, m in app.notices if s == "warning"]
        assert any("ctrl+q is given to quote but is also quit_ctrl" in m for m in warnings)
        assert any("'nonsense' is not a key id" in m for m in warnings)


async def test_the_title_follows_the_tables_state_by_itself(config):  # noqa: F811
    """No hand-called refresh: sort, direction, marks, filter and find are watched."""
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        table = app.table
        table.sort_by = "cost"
        await pilot.pause(0)
        assert "sort cost ↓" in table.border_title
        table.reverse = True
        await pilot.pause(0)
        assert "sort cost ↑" in table.border_title
        table.set_mark(3, True)
        await pilot.pause(0)
        assert table.border_subtitle.startswith("1 marked")
        app.find_term = "fox"
        await pilot.pause(0)
        assert "find 'fox'" in table.border_title
