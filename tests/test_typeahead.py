"""Type-ahead into the filter, find and go-to lines: keys that come in one burst with the
key that opens a line (a paste, tmux send-keys, a fast typist) go to that line, in order,
not to the job table behind it. Each burst is posted to the app in one go, before the app
runs, the way the terminal driver hands it a read's worth of keys."""

from __future__ import annotations

from textual import events

from tests.test_habits import until_true
from tests.test_snapshots import config, ready, seeded_app  # noqa: F401  (config: fixture)
from tui.app.app import WanApp
from tui.app.widgets.filter_bar import FilterBar
from tui.app.widgets.prompt_bar import PromptBar

CHARS = {"slash": "/", "number_sign": "#", "enter": "\r", "escape": "\x1b",
         "backspace": "\x7f", "space": " "}


def burst(app, *keys: str) -> None:
    """Queue every key before the app handles the first, as the driver does with a read."""
    for key in keys:
        app.post_message(events.Key(key, CHARS.get(key, key)))


async def test_a_burst_after_slash_is_typed_into_the_filter_line(config):  # noqa: F811
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        bar, table = app.query_one(FilterBar), app.table
        burst(app, "slash", *"fox")  # f would open find, o open a file, x do nothing
        await until_true(pilot, lambda: table.order == [1], "only the fox job")
        assert bar.value == "fox" and bar.display and app.focused is bar
        assert not app.query_one(PromptBar).display
        assert app.notices == type(app.notices)()  # nothing tried to open a file


async def test_a_burst_with_enter_applies_the_filter_and_closes_the_line(config):  # noqa: F811
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        bar, table = app.query_one(FilterBar), app.table
        burst(app, "slash", *"foxx", "backspace", "enter")
        await until_true(pilot, lambda: table.flt.text == "fox", "the filter applied")
        # the table reloads its rows from the store after the filter changes
        await until_true(pilot, lambda: table.order == [1], "only the fox job")
        await until_true(pilot, lambda: not bar.display and app.focused is table,
                         "the line closed")
        assert bar.value == "fox"
        assert not app.query_one(PromptBar).display


async def test_escape_in_the_burst_undoes_the_filter_and_a_key_before_slash_counts(
        config, monkeypatch):  # noqa: F811
    closed: list[str | None] = []
    handler = WanApp.on_filter_bar_closed

    def seen(app, event: FilterBar.Closed) -> None:
        closed.append(event.restore)
        handler(app, event)

    monkeypatch.setattr(WanApp, "on_filter_bar_closed", seen)
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        bar, table = app.query_one(FilterBar), app.table
        assert table.current_id == 9
        burst(app, "j", "slash", *"fox", "escape")  # j still moves the table's cursor
        await until_true(pilot, lambda: closed == [""], "the line closed by escape")
        await until_true(pilot, lambda: not bar.display and app.focused is table,
                         "the table focused again")
        assert table.current_id == 8 and bar.value == "" and not table.flt.text
        assert not app.query_one(PromptBar).display


async def test_a_burst_after_f_finds(config):  # noqa: F811
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        table, prompt = app.table, app.query_one(PromptBar)
        assert table.current_id == 9
        burst(app, "f", *"lighthouse", "enter")  # #9 and #4 have the word
        await until_true(pilot, lambda: table.current_id == 4, "the next match")
        assert app.find_term == "lighthouse"
        assert not prompt.display and app.focused is table
        assert not app.query_one(FilterBar).display


async def test_a_burst_after_number_sign_goes_to_the_job(config):  # noqa: F811
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        table, prompt = app.table, app.query_one(PromptBar)
        burst(app, "number_sign", "2", "enter")
        await until_true(pilot, lambda: table.current_id == 2, "job #2")
        assert not prompt.display and app.focused is table
        assert app.notices == type(app.notices)()


async def test_once_the_line_has_the_focus_the_opening_keys_are_text(config):  # noqa: F811
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        bar = app.query_one(FilterBar)
        burst(app, "slash", *"fox")
        await until_true(pilot, lambda: bar.value == "fox" and app.focused is bar, "fox typed")
        burst(app, "space", "number_sign", "f", "slash")
        await until_true(pilot, lambda: bar.value == "fox #f/", "typed as text")
        assert app.focused is bar and not app.query_one(PromptBar).display


async def test_remapped_keys_open_the_lines_and_keep_the_burst(config):  # noqa: F811
    config.keymap = {"find": "slash", "filter": "F"}
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        table = app.table
        burst(app, "slash", *"lighthouse", "enter")  # `/` finds now
        await until_true(pilot, lambda: table.current_id == 4, "the next match")
        assert app.find_term == "lighthouse" and not app.query_one(FilterBar).display
        burst(app, "F", *"fox")  # and F filters
        await until_true(pilot, lambda: table.order == [1], "only the fox job")
        assert app.query_one(FilterBar).value == "fox"


async def test_keys_after_enter_in_the_burst_go_back_to_the_table(config):  # noqa: F811
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        bar, table = app.query_one(FilterBar), app.table
        assert app.view == "split"
        burst(app, "slash", *"lighthouse", "enter", "z")  # z: the table alone
        await until_true(pilot, lambda: table.flt.text == "lighthouse", "the filter applied")
        await until_true(pilot, lambda: app.view == "table", "the table zoomed")
        # the table reloads its rows from the store after the filter changes
        await until_true(pilot, lambda: table.order == [9, 4], "the two lighthouse jobs")
        assert bar.value == "lighthouse"
        assert not bar.display and app.focused is table


async def test_keys_after_escape_in_the_go_to_line_go_back_to_the_table(config):  # noqa: F811
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        table, prompt = app.table, app.query_one(PromptBar)
        burst(app, "number_sign", "7", "escape", "j", "j")
        await until_true(pilot, lambda: table.current_id == 7, "the cursor two rows down")
        assert prompt.value == "7" and not prompt.display and app.focused is table


async def test_a_paste_right_after_slash_goes_into_the_filter_line(config):  # noqa: F811
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        bar, table = app.query_one(FilterBar), app.table
        burst(app, "slash")
        app.post_message(events.Paste("fox"))  # a bracketed paste, in the same read
        await until_true(pilot, lambda: table.order == [1], "only the fox job")
        assert bar.value == "fox" and app.focused is bar


async def test_keys_are_never_held_for_good_when_the_focus_does_not_move(
        config, monkeypatch):  # noqa: F811
    """Should a line's ⏎ ever not close it (here: a submit that does nothing), the keys
    held behind it go on after a second instead of being swallowed for good."""

    async def stays_open(self) -> None:
        return None

    monkeypatch.setattr(FilterBar, "action_submit", stays_open)
    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        bar = app.query_one(FilterBar)
        burst(app, "slash", *"fox", "enter", *"es")
        await until_true(pilot, lambda: bar.value == "foxes", "the held keys typed")
        assert bar.display and app.focused is bar
