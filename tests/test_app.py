"""The dashboard driven by its keys against the simulator on a real loopback socket.

Every test asserts on what the engine, the store or the simulator did, not only on pixels.
Jobs run in a fraction of a second (FAST_POLICY); waits poll state with a timeout.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from conftest import FAST_POLICY, T2V, processes_naming, sim_env
from textual.widgets import Static

from tui.app.app import WanApp
from tui.app.facade import Facade
from tui.app.screens.confirm import ConfirmScreen
from tui.app.screens.help import HelpScreen
from tui.app.widgets.job_table import PAGE
from tui.config import load_config
from tui.jobs import JobRequest, JobState
from tui.providers.base import Quote
from tui.session import open_session
from tui.sim.state import Faults

SIZE = (160, 45)


def req(prompt: str = "a red fox runs through snow", **kw) -> JobRequest:
    kw.setdefault("model", T2V)
    kw.setdefault("duration", "5s")
    return JobRequest(prompt=prompt, **kw)


WAIT_FLOOR_S = 30.0


async def until(pilot, check: Callable[[], object | Awaitable[object]], timeout: float = 15.0,
                what: str = "condition") -> object:
    """Poll `check` (sync or async) while the app runs, until it is truthy. `timeout` is
    what the test expects; it waits at least WAIT_FLOOR_S, since a busy machine (CI's two
    cores running other tests' engines) makes a step slower, never wrong."""
    deadline = time.monotonic() + max(timeout, WAIT_FLOOR_S)
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def on_screen(app, screen_type: type) -> bool:
    """The app shows a `screen_type` whose on_mount has run, so keys pressed now reach what it
    focuses and highlights there (a screen is app.screen as soon as it is pushed, before that)."""
    return isinstance(app.screen, screen_type) and app.screen.is_mounted


async def states(facade: Facade, ids) -> list[JobState]:
    return [(await facade.get(i)).state for i in ids]


async def all_in(facade: Facade, ids, wanted) -> bool:
    wanted = {wanted} if isinstance(wanted, JobState) else set(wanted)
    return all(s in wanted for s in await states(facade, ids))


def config_for(sim, **extra):
    home = Path(os.environ["WAN_TUI_HOME"])
    env = sim_env(sim, home, **extra)
    return load_config(env)


@asynccontextmanager
async def dashboard(sim, requests=(), *, keymap=None, config=None,
                    size=SIZE) -> AsyncIterator[tuple[WanApp, object, Facade]]:
    """An app over a fresh history; `requests` are recorded before the engine starts."""
    config = config or config_for(sim)
    config.keymap = dict(keymap or {})
    async with open_session(config, policy=FAST_POLICY) as session:
        facade = Facade(session)
        if requests:
            await facade.submit(list(requests), [Quote(0.25)] * len(requests))
        app = WanApp(facade)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.table.loaded.is_set(), what="first window")
            yield app, pilot, facade


def notices(app: WanApp, severity: str | None = None) -> list[str]:
    return [m for s, m in app.notices if severity is None or s == severity]


async def settle(app, pilot, facade, ids, wanted=JobState.DONE, timeout=20.0):
    await until(pilot, lambda: all_in(facade, ids, wanted), timeout, f"jobs {ids} {wanted}")
    # ...and the table shows it (patched by the timer, not rebuilt)
    await until(pilot, lambda: all(app.table.jobs[i].state in (
        {wanted} if isinstance(wanted, JobState) else set(wanted))
        for i in ids if i in app.table.jobs), 5, "table caught up")


# ---------------------------------------------------------------- moving around


async def test_moves_with_vim_keys_and_arrows_and_shows_detail(sim):
    async with dashboard(sim, [req(f"clip {i}") for i in range(6)]) as (app, pilot, facade):
        table = app.table
        await settle(app, pilot, facade, range(1, 7))
        assert table.order == [6, 5, 4, 3, 2, 1]  # newest first
        assert table.current_id == 6
        await pilot.press("j", "j", "down")
        assert table.current_id == 3
        await pilot.press("k", "up")
        assert table.current_id == 5
        await pilot.press("G")
        await until(pilot, lambda: table.current_id == 1, 5, "bottom")
        await pilot.press("g")
        await until(pilot, lambda: table.current_id == 6, 5, "top")
        await pilot.press("j")
        await until(pilot, lambda: app.detail.job and app.detail.job.id == 5, 5, "detail")
        await until(pilot, lambda: len(app.detail.events) >= 5, 5, "timeline")
        body = app.detail.plain()
        assert "clip 4" in body and "accepted as" in body and "saved" in body
        await pilot.press("enter")
        assert app.focused is app.detail
        await pilot.press("escape")
        assert app.focused is table


async def test_live_updates_patch_cells_in_place_and_keep_the_cursor(make_sim):
    sim = make_sim(seed=3, mean_s=1.0)
    async with dashboard(sim, [req(f"slow clip {i}") for i in range(5)]) as (app, pilot, facade):
        table = app.table
        rebuilt = []
        # A jump (new window) goes through _rebuild; live updates must patch in place.
        original_rebuild = table._rebuild
        table._rebuild = lambda *a, **k: (rebuilt.append(1), original_rebuild(*a, **k))[1]
        await pilot.press("j", "j")
        assert table.current_id == 3
        updates = []
        original_update = table.update_cell
        table.update_cell = lambda *a, **k: (updates.append(a[:2]), original_update(*a, **k))[1]
        await settle(app, pilot, facade, range(1, 6))
        assert not rebuilt, "live updates must never clear and rebuild the table"
        assert table.current_id == 3
        assert {column for _, column in updates} >= {"state", "progress", "size"}
        assert str(table.get_cell("3", "state")) == "✔ done"
        assert "done" in str(table.get_cell("3", "progress"))


# ---------------------------------------------------------------- filter and sort


async def test_filter_by_state_model_and_prompt_words(sim):
    requests = [req("a cat on a piano"), req("a dog in the rain"),
                req("a cat in the snow [sim:policy]")]
    async with dashboard(sim, requests) as (app, pilot, facade):
        table = app.table
        await settle(app, pilot, facade, [1, 2])
        await settle(app, pilot, facade, [3], JobState.FAILED)
        await pilot.press("slash", *"cat")
        await until(pilot, lambda: set(table.order) == {1, 3}, 5, "words filter")
        await pilot.press("enter")
        assert app.focused is table
        await pilot.press("slash", "ctrl+u", *"state:failed")
        await until(pilot, lambda: table.order == [3], 5, "state filter")
        await pilot.press("escape")  # back to what it was before this edit: "cat"
        await until(pilot, lambda: set(table.order) == {1, 3}, 5, "undo")
        await pilot.press("slash")
        # At once, as a paste: typed key by key on a slow machine, the 150 ms pause after a
        # key would apply "st" (no match) before the typo, which is not what this checks.
        app.query_one("FilterBar").value = "state:bogus"
        await until(pilot, lambda: "unknown state" in app.query_one("FilterBar").border_subtitle,
                    5, "the typo named")
        assert set(table.order) == {1, 3}  # a typo does not blank the table
        app.query_one("FilterBar").value = f"model:{T2V} rain"  # as if typed
        await pilot.press("enter")
        await until(pilot, lambda: table.order == [2], 5, "model + words")
        await pilot.press("escape")  # esc on the table clears the filter
        await until(pilot, lambda: table.order == [3, 2, 1], 5, "cleared")


async def test_sort_cycles_and_keeps_the_cursor_on_its_job(sim):
    requests = [req(f"sorted {i}", resolution=r) for i, r in enumerate(["480p", "1080p", "720p"])]
    requests.append(req("sorted fails [sim:policy]"))
    async with dashboard(sim, requests) as (app, pilot, facade):
        table = app.table
        await settle(app, pilot, facade, [1, 2, 3])
        await settle(app, pilot, facade, [4], JobState.FAILED)
        await pilot.press("j")
        assert table.current_id == 3
        for expected in ("state", "model", "provider", "cost", "updated", "created"):
            await pilot.press("s")
            await app.workers.wait_for_complete()
            assert table.sort_by == expected
            page = await facade.page(table.flt, expected, 0, PAGE)
            assert table.order == [j.id for j in page], expected
            assert table.current_id == 3, expected


# ---------------------------------------------------------------- marks and bulk actions


async def test_marks_and_bulk_cancel_stop_exactly_the_marked_jobs(make_sim):
    sim = make_sim(seed=5, mean_s=30.0)  # long enough to still be running when cancelled
    async with dashboard(sim, [req(f"long {i}") for i in range(5)]) as (app, pilot, facade):
        table = app.table
        # One coroutine: `a() or b()` on two coroutines never looks at the second.
        await until(pilot, lambda: all_in(facade, range(1, 6),
                                          (JobState.QUEUED, JobState.PROCESSING)),
                    10, "all submitted")
        await pilot.press("space", "j", "space")  # marks 5, skips 4, marks 3 ...
        assert table.marked == {5, 3}
        await pilot.press("space")
        assert table.marked == {5, 3, 2}
        await pilot.press("c")
        await until(pilot, lambda: on_screen(app, ConfirmScreen), 5, "confirm")
        await pilot.press("y")
        await until(pilot, lambda: all_in(facade, [5, 3, 2], JobState.CANCELLED), 5, "cancelled")
        assert not await all_in(facade, [4], JobState.CANCELLED)
        assert not await all_in(facade, [1], JobState.CANCELLED)
        await until(pilot, lambda: table.marked == set(), 5, "marks cleared after the action")
        await until(pilot, lambda: table.jobs[5].state == JobState.CANCELLED, 5, "row shows it")


# ---------------------------------------------------------------- re-queue, delete, quote


async def test_requeue_after_404_confirms_the_price_then_runs_a_new_job(sim):
    async with dashboard(sim, [req("clouds over a ridge [sim:expire]")]) as (app, pilot, facade):
        await settle(app, pilot, facade, [1], JobState.EXPIRED)
        calls = len(sim.state.queue_calls)
        await pilot.press("r")
        await until(pilot, lambda: on_screen(app, ConfirmScreen), 5, "confirm")
        assert "$" in app.screen.title_text  # the price is in the question
        await pilot.press("n")
        await pilot.pause(0.2)
        assert len(sim.state.queue_calls) == calls and await facade.count(app.table.flt) == 1
        await pilot.press("r")
        await until(pilot, lambda: on_screen(app, ConfirmScreen), 5, "confirm again")
        await pilot.press("y")
        await until(pilot, lambda: facade.get(2), 5, "the new job")
        await settle(app, pilot, facade, [2], JobState.EXPIRED)  # same prompt, same fate
        assert len(sim.state.queue_calls) == calls + 1
        assert (await facade.get(2)).request == (await facade.get(1)).request
        assert any("re-queued as job 2" in e.detail for e in await facade.events(1))
        assert app.table.order[0] == 2


async def test_delete_needs_a_confirmation_and_names_the_missing_local_copy(sim):
    requests = [req("keep this one"), req("apixo one", provider="apixo", model="wan-2-5-t2v")]
    async with dashboard(sim, requests) as (app, pilot, facade):
        table = app.table
        await settle(app, pilot, facade, [1, 2])
        first = await facade.get(1)
        await pilot.press("G")  # job 1 (venice) is last
        await until(pilot, lambda: table.current_id == 1, 5, "bottom")
        await pilot.press("d")
        await until(pilot, lambda: on_screen(app, ConfirmScreen), 5, "confirm")
        await pilot.press("n")
        await pilot.pause(0.2)
        assert sim.state.complete_calls == []  # nothing deleted without a yes
        Path(first.file).unlink()  # now there is no local copy: the question says so
        await pilot.press("d")
        await until(pilot, lambda: on_screen(app, ConfirmScreen), 5, "confirm again")
        assert "no local copy" in str(app.screen.message)
        await pilot.press("y")
        await until(pilot, lambda: sim.state.complete_calls, 5, "the delete call")
        assert [rid for rid, _ in sim.state.complete_calls] == [first.remote_id]
        await until(pilot, lambda: _remote_deleted(facade, 1), 5, "recorded as deleted")
        await pilot.press("k")  # the APIXO job: its API cannot delete, and we say so
        assert table.current_id == 2
        await pilot.press("d")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("no delete endpoint" in m for m in notices(app, "warning"))


async def _remote_deleted(facade: Facade, job_id: int) -> bool:
    return (await facade.get(job_id)).remote_deleted


async def test_quote_reprices_the_selected_and_the_marked_jobs(sim):
    requests = [req("priced", resolution="720p"), req("priced too", resolution="1080p")]
    async with dashboard(sim, requests) as (app, pilot, facade):
        await settle(app, pilot, facade, [1, 2])
        await pilot.press("Q")
        await until(pilot, lambda: any("now" in m for m in notices(app)), 5, "quote")
        assert any(m.startswith("#2 venice/") and "$" in m for m in notices(app))
        await pilot.press("space", "space", "Q")
        await until(pilot, lambda: any(m.startswith("2 jobs would cost") for m in notices(app)),
                    5, "bulk quote")


# ---------------------------------------------------------------- files over SSH


async def test_open_and_copy_fall_back_to_osc52_without_a_display(sim, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22")
    async with dashboard(sim, [req("to open")]) as (app, pilot, facade):
        await settle(app, pilot, facade, [1])
        path = str(Path((await facade.get(1)).file).resolve())
        await pilot.press("o")
        await until(pilot, lambda: app.clipboard == path, 5, "path copied")
        assert any(path in m and "no desktop" in m for m in notices(app))
        assert f"osc52:{path}" in app.terminal.sent
        app.copy_to_clipboard("")
        await pilot.press("y")
        await until(pilot, lambda: app.clipboard == path, 5, "copied again")


# ---------------------------------------------------------------- help, palette, keymap


async def test_help_lists_every_binding_with_its_key(sim):
    async with dashboard(sim) as (app, pilot, _):
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        ids = {binding_id for _, _, binding_id in app.screen.rows}
        assert ids >= {"down", "up", "top", "bottom", "focus_detail", "filter", "sort", "mark",
                       "open", "copy_path", "new_job", "batch", "quote", "requeue", "cancel",
                       "delete", "help", "palette", "back", "quit"}
        every = [b for b in app._all_bindings()]
        assert all(b.id for b in every), "every binding has an id"
        # How pictures are drawn here, and how to choose (no terminal in tests: half-blocks).
        said = str(app.screen.query_one("#help-pictures", Static).render())
        assert "pictures: halfblock" in said and "WAN_TUI_IMAGES" in said
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_palette_runs_actions_by_name(sim):
    async with dashboard(sim) as (app, pilot, _):
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette", 5, "palette")
        await pilot.press(*"sort by state")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: app.table.sort_by == "state", 5, "sorted by palette")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for words in ("Cancel", "Delete", "Re-queue", "Quote", "Open", "Copy", "New job",
                      "Submit a batch", "Filter", "Cycle the sort", "Quit", "This help"):
            assert any(t.startswith(words) for t in titles), words


async def test_keys_remap_from_the_config_keymap(make_sim):
    sim = make_sim(seed=9, mean_s=30.0)
    keymap = {"cancel": "x", "sort": "ctrl+o"}
    async with dashboard(sim, [req("remapped")], keymap=keymap) as (app, pilot, facade):
        await until(pilot, lambda: all_in(facade, [1], (JobState.QUEUED, JobState.PROCESSING)),
                    10, "submitted")
        await pilot.press("c")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)  # c does nothing any more
        await pilot.press("ctrl+o")
        await until(pilot, lambda: app.table.sort_by == "state", 5, "remapped sort")
        await pilot.press("x")
        await until(pilot, lambda: on_screen(app, ConfirmScreen), 5, "confirm")
        await pilot.press("y")
        await until(pilot, lambda: all_in(facade, [1], JobState.CANCELLED), 5, "cancelled")
        rows = {binding_id: keys for keys, _, binding_id in app.key_rows()}
        assert rows["cancel"] == "x" and rows["sort"] == "^o"


# ---------------------------------------------------------------- never in the way


async def test_outage_notifies_and_jobs_finish_once_it_ends(make_sim):
    sim = make_sim(Faults(failure_block_threshold=0), seed=13, mean_s=0.6)
    async with dashboard(sim, [req(f"outage {i}") for i in range(3)]) as (app, pilot, facade):
        await until(pilot, lambda: all_in(facade, [1, 2, 3], (JobState.QUEUED,
                                                              JobState.PROCESSING)),
                    10, "submitted")
        sim.state.faults.rate_503 = 1.0
        await until(pilot, lambda: notices(app, "warning"), 10, "an outage notification")
        await pilot.press("j", "k")  # still answering keys
        sim.state.faults.rate_503 = 0.0
        await settle(app, pilot, facade, [1, 2, 3], timeout=30)
        assert app.is_running
        assert any("503" in m or "capacity" in m for m in notices(app, "warning"))


async def test_batch_end_rings_the_bell_and_sends_osc9(sim):
    async with dashboard(sim, [req("one"), req("two [sim:policy]")]) as (app, pilot, facade):
        await settle(app, pilot, facade, [1])
        await settle(app, pilot, facade, [2], JobState.FAILED)
        await until(pilot, lambda: "\a" in app.terminal.sent, 5, "bell")
        assert any(s.startswith("\x1b]9;wan-tui: all jobs settled: 1 done, 1 not done")
                   for s in app.terminal.sent)
        # The failure is not a red toast: it waits on the alert line (test_calm_notices).
        assert any("all jobs settled" in m for m in notices(app, "warning"))
        assert not notices(app, "error")


async def test_quit_with_jobs_active_asks_nothing_and_says_who_follows_them(make_sim):
    sim = make_sim(Faults(slow_s=1.5), seed=17)
    async with dashboard(sim, [req("slow submit")]) as (app, pilot, facade):
        await until(pilot, lambda: all_in(facade, [1], JobState.SUBMITTING), 5, "submitting")
        line = await facade.quit_line()
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 5, "exit without a question")
    assert app.return_code == 0
    # This harness runs the engine in the test's process: the line names it.
    assert f"engine pid {os.getpid()} still follows 1 active job" in line
    assert "`wan-tui engine stop` ends it" in line


async def test_quit_without_anything_in_flight_does_not_ask(sim):
    async with dashboard(sim) as (app, pilot, _):
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 5, "exit")


# ---------------------------------------------------------------- new job and batch


async def test_new_job_and_batch_submit_what_their_screens_return(sim, tmp_path):
    from tui.app.screens.batch import BatchScreen
    from tui.app.screens.result import SubmitResult
    from tui.app.screens.submit import SubmitScreen

    async with dashboard(sim) as (app, pilot, facade):
        await pilot.press("n")
        await until(pilot, lambda: on_screen(app, SubmitScreen), 5, "submit screen")
        request = req("from the modal")
        price = await facade.quote(request)
        app.screen.dismiss(SubmitResult([request], [price]))
        await until(pilot, lambda: facade.get(1), 5, "recorded")
        await settle(app, pilot, facade, [1])
        assert app.table.order == [1]
        await pilot.press("b")
        await until(pilot, lambda: on_screen(app, BatchScreen), 5, "batch screen")
        app.screen.dismiss(None)  # cancelled: nothing is spent
        await pilot.pause(0.2)
        assert await facade.count(app.table.flt) == 1
        await pilot.press("b")
        await until(pilot, lambda: on_screen(app, BatchScreen), 5, "batch again")
        batch = [req(f"batch {i}") for i in range(3)]
        app.screen.dismiss(SubmitResult(batch, [price] * 3))
        await until(pilot, lambda: facade.get(4), 5, "batch recorded")
        await settle(app, pilot, facade, [2, 3, 4])
        assert app.table.order == [4, 3, 2, 1]
        assert any("submitted 3 jobs" in m for m in notices(app))
        # The cursor went to the batch's first job, not staying on the old row.
        await until(pilot, lambda: app.table.current_id == 2, 5, "cursor on the new batch")


# ---------------------------------------------------------------- a large history


@pytest.mark.timeout(120)
async def test_a_large_history_is_windowed_not_loaded(sim):
    from tui.jobs import Job

    config = config_for(sim)
    async with open_session(config, lock=False) as session:
        base = 1_700_000_000.0
        jobs = [Job(0, req(f"history {n} {'zebra' if n % 1000 == 7 else 'plain'}"),
                    JobState.DONE if n % 10 else JobState.FAILED, base + n, base + n,
                    cost_usd=0.25) for n in range(100_000)]
        await session.store.bulk_insert_for_benchmark(jobs)
    async with dashboard(sim, config=config) as (app, pilot, facade):
        table = app.table
        assert table.total == 100_000 and len(table.order) == PAGE
        started = time.monotonic()
        await pilot.press("G")
        await until(pilot, lambda: table.current_id == 1, 10, "bottom")
        assert len(table.order) == PAGE and table.base == 99_800
        await pilot.press("g")
        await until(pilot, lambda: table.current_id == 100_000, 10, "top")
        assert table.base == 0
        await pilot.press(*["pagedown"] * 8)  # nearing the end of the window reads the next page
        for _ in range(5):
            await pilot.press("j")
        await until(pilot, lambda: len(table.order) == 2 * PAGE, 5, "next page")
        keep = table.current_id
        await pilot.press("s")  # by state: failed jobs move far down; the cursor follows
        await app.workers.wait_for_complete()
        assert table.sort_by == "state" and table.current_id == keep
        assert len(table.order) <= 2 * PAGE and table.base > 0
        await pilot.press("slash", *"zebra", "enter")
        await until(pilot, lambda: table.total == 100, 10, "FTS filter at 100k")
        assert time.monotonic() - started < 20


# ---------------------------------------------------------------- the demo


def test_demo_runs_its_jobs_and_cleans_up(monkeypatch, capsys):
    """`wan-tui demo`: simulator, throwaway home and first jobs, no key; a headless run."""
    import argparse
    import tempfile

    from tui.app import launch

    made: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs):
        made.append(Path(real_mkdtemp(*args, **kwargs)))
        return str(made[-1])

    seen: dict[str, object] = {}

    async def headless(self):
        async with self.run_test(size=SIZE) as pilot:
            ids = range(1, 9)
            await until(pilot, lambda: all_in(self.facade, ids, (
                JobState.DONE, JobState.FAILED, JobState.EXPIRED)), 15, "demo jobs settle")
            seen["states"] = await states(self.facade, ids)
            seen["providers"] = {(await self.facade.get(i)).provider for i in ids}
            seen["home"] = self.facade.config.db_path
            await pilot.press("q")  # the demo says what quitting deletes, then goes
            await until(pilot, lambda: isinstance(self.screen, ConfirmScreen), 5, "question")
            seen["question"] = str(self.screen.message)
            await pilot.press("y")
            await until(pilot, lambda: not self.is_running, 5, "exit")

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(WanApp, "run_async", headless)
    assert launch.run_demo(argparse.Namespace(jobs=8, mean=0.3)) == 0
    assert f"folder {made[0]} is deleted, with the 6 videos" in seen["question"]
    assert f"deleted {made[0]} (its history and 6 videos)" in capsys.readouterr().out
    assert seen["providers"] == {"venice", "apixo", "acedata"}
    assert seen["states"].count(JobState.EXPIRED) == 1  # the one to try `r` on
    assert seen["states"].count(JobState.FAILED) == 1  # refused by the content policy
    assert seen["states"].count(JobState.DONE) == 6
    assert str(seen["home"]).startswith(str(made[0])) and not made[0].exists()
    assert not processes_naming(made[0])  # its simulator, engine and watcher ended with it
    assert os.environ.get("VENICE_API_KEY") is None  # the demo's env did not leak


# ---------------------------------------------------------------- pure helpers


def test_has_display_and_escape_sequences():
    from tui.app.notify import has_display, osc9, tmux_passthrough

    assert has_display({"DISPLAY": ":0"}, "linux")
    assert has_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not has_display({}, "linux")
    assert not has_display({"DISPLAY": ":0", "SSH_CONNECTION": "a b c d"}, "linux")
    assert has_display({}, "darwin") and not has_display({"SSH_TTY": "/dev/pts/1"}, "darwin")
    assert osc9("done\x07\x1b]52;c;evil") == "\x1b]9;done  ]52;c;evil\a"  # no injection
    assert tmux_passthrough("\x1b]9;x\a") == "\x1bPtmux;\x1b\x1b]9;x\a\x1b\\"


async def test_open_in_viewer_reports_a_failing_opener(monkeypatch, tmp_path):
    from tui.app import notify

    monkeypatch.setattr(notify, "viewer_command", lambda path: ["false", str(path)])
    assert "exited with status 1" in await notify.open_in_viewer(tmp_path)
    monkeypatch.setattr(notify, "viewer_command", lambda path: ["true", str(path)])
    assert await notify.open_in_viewer(tmp_path) is None


def test_progress_cell_says_overdue_instead_of_a_fake_hundred_percent():
    from tui.app.widgets.rows import progress_cell
    from tui.jobs import Job

    base = Job(1, req(), JobState.PROCESSING, 1000.0, 1000.0, submitted_at=1000.0,
               estimate_s=100.0)
    assert progress_cell(base, 1042.0).plain.endswith("42% ETA 58s")
    late = progress_cell(base, 1130.0).plain
    assert "overdue 30s" in late and "100%" not in late
    assert progress_cell(base.with_(estimate_s=None), 1042.0).plain.endswith("running 42s")
    assert progress_cell(base.with_(state=JobState.DONE), 1042.0).plain.endswith("done")


def test_newest_first_except_by_state():
    from tui.app.facade import descending

    assert descending("created") and descending("cost") and not descending("state")


async def test_batch_check_names_a_json_error_beside_the_good_lines(sim, tmp_path):
    path = tmp_path / "batch.jsonl"
    good = f'{{"model": "{T2V}", "prompt": "a fox", "duration": "5s"}}'
    path.write_text("\n".join([good, good, '{"model": "x", "prompt": oops}', good, good, good]))
    async with dashboard(sim) as (app, pilot, facade):
        check = await facade.check_batch(path)
    assert check.error is None and not check.ok
    assert [n for n, req, _ in check.lines if req is not None] == [1, 2, 4, 5, 6]
    assert [p for _, req, p in check.lines if req is None] == [
        "line 3: not valid JSON (Expecting value, column 26)"]
