"""What keeps keys quick with 1 000 jobs running, pinned by counts (the benchmark,
`python -m tui.bench.dashboard`, measures the time): jumps draw only the cells that
changed, a state change elsewhere does not re-read the window, a running job's detail pane
redraws only its clock lines, its width never flips with the job shown, and full garbage
collections wait for a pause in the typing."""

from __future__ import annotations

import asyncio
import gc
from contextlib import asynccontextmanager

from tests.test_snapshots import NOW, config, job  # noqa: F401  (config: fixture)
from tui.app import idle_gc
from tui.app.app import WanApp
from tui.app.facade import Facade, JobQuery
from tui.app.idle_gc import IdleCollector
from tui.app.widgets import job_table
from tui.jobs import JobState
from tui.session import open_session

SIZE = (160, 45)


def many_jobs(count: int, state: JobState = JobState.DONE) -> list:
    extra = {"estimate_s": 300.0} if state.active else {}
    return [job(state, f"prompt number {n} of a long batch", age=200 - n * 0.3, **extra)
            for n in range(count)]


def app_with(config, jobs: list, clock: list[float]) -> WanApp:  # noqa: F811
    @asynccontextmanager
    async def opener():
        async with open_session(config, lock=False) as session:
            await session.store.bulk_insert_for_benchmark(jobs)
            yield Facade(session)

    return WanApp(opener=opener, start_engine=False, clock=lambda: clock[0])


def count_cells(monkeypatch) -> list[int]:
    drawn = [0]
    original = job_table._cell_segments

    def counting(*args, **kwargs):
        drawn[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(job_table, "_cell_segments", counting)
    return drawn


async def ready(pilot) -> None:
    """The first window is in and the detail pane shows the job under the cursor."""
    app = pilot.app
    for _ in range(100):
        await pilot.pause(0.05)
        if app.table.order and app.detail.job is not None \
                and app.detail.job.id == app.table.current_id:
            return
    raise AssertionError("the dashboard did not settle")


async def settle(pilot) -> None:
    for _ in range(3):
        await pilot.pause(0.05)


async def test_jumping_back_draws_no_cell_of_a_finished_job_again(config, monkeypatch):  # noqa: F811
    app = app_with(config, many_jobs(600), [NOW])
    drawn = count_cells(monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        table = app.table
        await pilot.press("G")
        await settle(pilot)
        assert table.base > 0  # another window: the first one's rows left it
        await pilot.press("g")
        await settle(pilot)
        assert table.base == 0
        before = drawn[0]
        await pilot.press("G")  # back to rows drawn before, none of them changed
        await settle(pilot)
        assert table.cursor_row == table.row_count - 1
        assert drawn[0] == before


async def test_jumping_back_to_running_jobs_draws_only_their_clock_cells(config, monkeypatch):  # noqa: F811
    clock = [NOW]
    app = app_with(config, many_jobs(600, JobState.PROCESSING), clock)
    drawn = count_cells(monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("G")
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        clock[0] += 7  # their elapsed time and progress moved meanwhile
        before = drawn[0]
        await pilot.press("G")
        await settle(pilot)
        rows = app.table.scrollable_content_region.height - app.table.header_height
        clock_cells = len([c for c in app.table.columns if c.clock])
        assert 0 < drawn[0] - before <= rows * clock_cells + len(app.table.columns)


async def test_a_state_change_outside_the_window_reads_nothing_again(config):  # noqa: F811
    app = app_with(config, many_jobs(600, JobState.PROCESSING), [NOW])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        table = app.table
        outside = await app.facade.page(JobQuery(), offset=500, limit=1)
        assert outside[0].id not in table.jobs
        moved = outside[0].with_(state=JobState.DOWNLOADING)
        assert table.patch(moved, transition=True) is False  # sorted by creation: stays out
        assert table.patch(moved, transition=True, new=True) is True  # a new job may enter
        table.sort_by = "state"
        assert table.patch(moved, transition=True) is True  # its place in the order moved
        table.sort_by = "created"
        table.flt = JobQuery(states=(JobState.PROCESSING,))
        assert table.patch(moved, transition=True) is True  # it left the filter


async def test_a_running_jobs_pane_redraws_only_its_clock_lines(config):  # noqa: F811
    clock = [NOW]
    app = app_with(config, many_jobs(3, JobState.PROCESSING), clock)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        detail = app.detail
        parts = [detail.query_one(f"#detail-{name}") for name in ("body", "live", "tail")]
        before = [part.content for part in parts]
        words = detail.plain()
        clock[0] += 3
        detail.render_now(clock[0])
        after = [part.content for part in parts]
        assert after[0] is before[0] and after[2] is before[2]  # not drawn again
        assert after[1] is not before[1]
        assert detail.plain() != words  # the clock lines moved on
        detail.render_now(clock[0])  # the same second again: nothing to draw
        assert parts[1].content is after[1]


async def test_the_detail_text_keeps_its_width_whatever_the_job(config):  # noqa: F811
    tall = job(JobState.FAILED, "word " * 400, age=500, error="refused " * 60,
               finished_at=NOW - 400)
    short = job(JobState.DONE, "a fox", age=400, finished_at=NOW - 300)
    app = app_with(config, [tall, short], [NOW])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        text = app.detail.query_one("#detail-text")
        widths = set()
        for key in ("j", "k", "j"):
            await pilot.press(key)
            await ready(pilot)
            await settle(pilot)
            widths.add(text.size.width)
        assert len(widths) == 1


async def test_moving_the_focus_repaints_what_it_changes_not_the_screen(config):  # noqa: F811
    app = app_with(config, many_jobs(40), [NOW])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        compositor = app.screen._compositor
        full, original = [0], compositor.render_full_update

        def counted(*args, **kwargs):
            full[0] += 1
            return original(*args, **kwargs)

        compositor.render_full_update = counted  # this app's compositor only
        table_border = app.table.styles.border_top
        await pilot.press("enter")  # the focus goes to the detail pane
        await settle(pilot)
        assert app.detail.has_focus
        assert app.table.styles.border_top != table_border  # :focus styles still follow
        await pilot.press("escape")  # and back to the table
        await settle(pilot)
        assert app.table.has_focus and app.table.styles.border_top == table_border
        assert full == [0]  # Textual's own Screen repaints every cell at each of these


def make_garbage_collections() -> None:
    """What a busy dashboard does between two full collections: young collections."""
    for _ in range(idle_gc.FULL_AFTER):
        gc.collect(1)


def test_full_collections_wait_for_a_pause_in_the_typing():
    now = [0.0]
    collector = IdleCollector(clock=lambda: now[0])
    full = []

    def seen(phase: str, info: dict) -> None:
        if phase == "stop" and info["generation"] == 2:
            full.append(now[0])

    gc.callbacks.append(seen)
    before = gc.get_threshold()
    try:
        collector.start()
        assert gc.get_threshold()[2] == idle_gc.NEVER
        make_garbage_collections()
        step = 0.25  # a key every 0.25 s: never even a short pause
        while now[0] + step < idle_gc.LONGEST_S:
            now[0] += step
            collector.touched()
            collector.tick()
        assert collector.collections == 0 and full == []
        now[0] = first = idle_gc.LONGEST_S + 0.1  # past the longest wait: even while typing
        collector.touched()
        assert collector.tick() and full == [first]
        make_garbage_collections()
        now[0] = first + idle_gc.EVERY_S - 5  # idle, but too soon after the last one
        assert not collector.tick()
        now[0] = second = first + idle_gc.EVERY_S + 1  # idle, and a while since: now
        assert collector.tick() and full == [first, second]
        make_garbage_collections()
        now[0] = second + idle_gc.OVERDUE_S + 1  # overdue: a short pause is enough
        collector.touched()
        now[0] += idle_gc.SHORT_QUIET_S / 2
        assert not collector.tick()  # not this short
        now[0] = third = now[0] + idle_gc.SHORT_QUIET_S
        assert collector.tick() and full == [first, second, third]
        make_garbage_collections()
        now[0] = third + 5  # typing again soon after: at its first pause, not 30 s later
        collector.touched()
        now[0] += idle_gc.QUIET_S / 2
        assert not collector.tick()
        now[0] = fourth = now[0] + idle_gc.QUIET_S
        assert collector.tick() and full == [first, second, third, fourth]
        now[0] = fourth + 10 * idle_gc.LONGEST_S  # left alone: nothing new to collect
        assert not collector.tick() and full == [first, second, third, fourth]
    finally:
        collector.stop()
        gc.callbacks.remove(seen)
    assert gc.get_threshold() == before


async def test_the_dashboard_leaves_full_collections_to_its_pauses(config):  # noqa: F811
    before = gc.get_threshold()
    app = app_with(config, many_jobs(3), [NOW])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert gc.get_threshold()[2] == idle_gc.NEVER
        typed_at = app.idle_gc.input_at
        await pilot.press("j")
        assert app.idle_gc.input_at > typed_at
    assert gc.get_threshold() == before


async def test_esc_shows_the_window_from_before_the_filter_at_once_then_reads_it(
        config, monkeypatch):  # noqa: F811
    app = app_with(config, many_jobs(600, JobState.PROCESSING), [NOW])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        table = app.table
        before = list(table.order)
        await pilot.press("slash", *"599", "enter")
        for _ in range(100):
            await pilot.pause(0.02)
            if not table.flt.empty and len(table.order) == 1:
                break
        assert len(table.order) == 1
        # The history's read is held back, and a job of the old window changes meanwhile.
        gate = asyncio.Event()
        page = app.facade.page
        reads: list[str] = []

        async def held(*args, **kwargs):
            reads.append("asked")
            await gate.wait()
            jobs = await page(*args, **kwargs)
            reads.append("answered")
            return jobs

        monkeypatch.setattr(app.facade, "page", held)
        await app.facade.session.store.transition(before[3], JobState.DOWNLOADING)
        await pilot.press("escape")
        await settle(pilot)
        assert reads == ["asked"]  # the read is still waiting ...
        assert table.flt.empty and table.order == before  # ... and the window shows
        gate.set()
        for _ in range(100):
            await pilot.pause(0.02)
            if reads == ["asked", "answered"] \
                    and table.jobs[before[3]].state == JobState.DOWNLOADING:
                break
        assert reads == ["asked", "answered"]
        assert table.jobs[before[3]].state == JobState.DOWNLOADING  # as the history says


async def test_esc_to_a_job_outside_the_kept_windows_draws_no_frame_before_its_rows(
        config):  # noqa: F811
    """esc after a filter whose job is not in a window the table kept: nothing is drawn
    between the key and the rows read for it (a frame of the old rows, retitled, would
    only hold the loop up while they are read)."""
    app = app_with(config, many_jobs(600), [NOW])
    drawn: list[tuple[bool, int]] = []  # each frame: (filter cleared, rows in the table)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        table = app.table
        display = app._display

        def counted(screen, renderable) -> None:
            if renderable is not None:
                drawn.append((table.flt.empty, len(table.order)))
            display(screen, renderable)

        app._display = counted  # type: ignore[method-assign]  # this app only
        await pilot.press("slash", "0", "enter")  # the oldest job: 600th, past the window
        for _ in range(100):
            await pilot.pause(0.02)
            if not table.flt.empty and len(table.order) == 1:
                break
        assert len(table.order) == 1
        await settle(pilot)
        drawn.clear()
        await pilot.press("escape")
        for _ in range(100):
            await pilot.pause(0.02)
            if table.flt.empty and len(table.order) > 1:
                break
        await settle(pilot)
        assert table.flt.empty and len(table.order) > 1
        assert drawn and all(rows > 1 for cleared, rows in drawn if cleared), drawn
