"""The dashboard: a job table, a detail pane and a status line over the engine.

Engine events arrive as plain callbacks on this event loop. They only mark jobs dirty; a
timer (4 Hz) patches the changed cells inside one `batch_update()`, so a burst of a hundred
polls costs one repaint. Every action that talks to a provider runs in a worker grouped by
job id with `exit_on_error=False`: an outage or a bad answer becomes a notification, never
a crash or a frozen screen.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from functools import partial
from pathlib import Path

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.driver import Driver
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input
from textual.worker import Worker

from tui.app import actions, commands, media_keys, navigate
from tui.app.alerts import Alerts, Repeats, Settled
from tui.app.diff_driver import diff_driver_class
from tui.app.facade import (
    SORTS,
    AllSettled,
    BalanceChanged,
    BudgetChanged,
    EngineEvent,
    Facade,
    JobChanged,
    JobQuery,
    Notice,
)
from tui.app.idle_gc import IdleCollector
from tui.app.notify import Terminal
from tui.app.one_frame import in_one_frame
from tui.app.screens.dashboard import DashboardScreen
from tui.app.screens.help import HelpScreen, KeyRow
from tui.app.typeahead import TypeAhead
from tui.app.widgets.alert_line import AlertLine
from tui.app.widgets.detail import DetailPane
from tui.app.widgets.filter_bar import FilterBar
from tui.app.widgets.footer import LazyFooter
from tui.app.widgets.job_table import JobTable
from tui.app.widgets.prompt_bar import PromptBar
from tui.app.widgets.status import StatusLine, read_status
from tui.jobs import Job, JobState, ValidationError

log = logging.getLogger("wan_tui.app")

LIVE_HZ = 4  # patches per second at most: smooth enough, cheap over SSH
STATUS_EVERY_S = 1.0
BATCH_EVERY_S = 3.0  # the batch's ETA and throughput are read again this often
DETAIL_DEBOUNCE_S = 0.08
RESYNC_EVERY_S = 10.0  # re-read the window even without engine events...
CHANGES_HZ = 4  # how often to look for other processes' commits (one PRAGMA when none)
DETAIL_EVENTS_EVERY_S = 2.0  # poll errors are logged without an event: re-read the timeline
SEVERITY = {"info": "information", "warning": "warning", "error": "error"}
SETTLED = (JobState.DONE, JobState.FAILED, JobState.EXPIRED, JobState.UNKNOWN)
VIEWS = ("split", "table", "detail")  # what `z` cycles through
DETAIL_SHARES = range(2, 9)  # the detail pane's tenths of the height that `+`/`-` step through


class WanApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "wan-tui"
    inherit_bindings = False  # Textual's ctrl+q/ctrl+c have no ids; ours can be remapped
    BINDINGS = [
        Binding("n", "new_job", "new", id="new_job"),
        Binding("l", "new_job_like", "like this", show=False, id="like_this"),
        Binding("V", "vary", "variations", show=False, id="vary"),
        Binding("b", "batch", "batch", id="batch"),
        Binding("B", "batches", "batches", id="batches"),
        Binding("exclamation_mark", "show_trouble", "failures", show=False, id="failures"),
        Binding("slash", "filter", "filter", id="filter"),
        Binding("s", "cycle_sort", "sort", id="sort"),
        Binding("less_than_sign", "sort_step(-1)", "sort by the column before", show=False,
                id="sort_prev"),
        Binding("greater_than_sign", "sort_step(1)", "sort by the column after", show=False,
                id="sort_next"),
        Binding("I", "reverse_sort", "reverse the sort", show=False, id="reverse"),
        Binding("f", "find", "find", show=False, id="find"),
        Binding("number_sign", "jump", "go to #", show=False, id="jump"),
        Binding("Y", "copy_remote_id", "copy remote id", show=False, id="copy_remote_id"),
        Binding("p", "copy_prompt", "copy prompt", show=False, id="copy_prompt"),
        Binding("Q", "quote", "quote", id="quote"),
        Binding("r", "requeue", "re-queue", id="requeue"),
        Binding("c", "cancel_jobs", "cancel", id="cancel"),
        Binding("d", "delete_remote", "delete", id="delete"),
        Binding("o", "open_file", "open", id="open"),
        Binding("y", "copy_path", "copy path", id="copy_path"),
        Binding("asterisk", "pick('star')", "star", show=False, id="star"),
        Binding("x", "pick('reject')", "reject", show=False, id="reject"),
        # Not in the footer (it is full at 160 columns): the detail pane names them.
        Binding("w", "play", "watch", show=False, id="play"),
        Binding("v", "gallery", "gallery", show=False, id="gallery"),
        Binding("z", "zoom", "zoom", id="zoom"),
        Binding("plus,equals_sign", "resize_detail(1)", "detail taller", show=False,
                id="detail_taller"),
        Binding("minus", "resize_detail(-1)", "detail shorter", show=False, id="detail_shorter"),
        Binding("question_mark", "help", "help", id="help"),
        Binding("ctrl+p", "command_palette", "palette", show=False, priority=True, id="palette"),
        Binding("escape", "back", "back", show=False, id="back"),
        Binding("q", "request_quit", "quit", id="quit"),
        # Habit from other terminal tools; kept apart so the footer shows plain `q`.
        Binding("ctrl+q,ctrl+c", "request_quit", "quit", show=False, id="quit_ctrl"),
    ]

    # What the screen shows: both panes, the table alone, or the detail alone; and the
    # detail pane's share of the height (tenths) while both show.
    view: reactive[str] = reactive("split", init=False)
    find_term: reactive[str | None] = reactive(None, init=False)  # what `f` looks for
    detail_share: reactive[int] = reactive(4, init=False)

    def __init__(
        self,
        facade: Facade | None = None,
        *,
        opener: Callable[[], AbstractAsyncContextManager[Facade]] | None = None,
        start_engine: bool = True,
        clock: Callable[[], float] | None = None,
        live: bool = True,
    ) -> None:
        super().__init__()
        if facade is None and opener is None:
            raise ValueError("WanApp needs a facade or an opener")
        self.facade: Facade = facade  # type: ignore[assignment]  # set by on_mount if opened
        self._opener = opener() if opener is not None else None
        self.start_engine = start_engine
        self.demo_folder: Path | None = None  # the demo's throwaway folder, deleted at exit
        self.clock = clock or (lambda: self.facade.now())  # the rows' clock; tests fix it
        self.live = live
        self.terminal = Terminal(self._write_escape, self.copy_to_clipboard)
        self.notices: deque[tuple[str, str]] = deque(maxlen=200)  # (severity, message) shown
        self.keymap: dict[str, str] = {}
        self._dirty: dict[int, tuple[Job, bool, bool]] = {}  # id -> (job, transition, new)
        self.settled = Settled()
        self.alerts = Alerts()
        self._ended: AllSettled | None = None
        # Jobs settled since this window opened (on_mount) are announced once; the active
        # count the status line last saw dropping to nothing is the end of the batch.
        self._opened_at = float("inf")
        self._announced: set[int] = set()
        self._seen_settle = [0, 0]  # done, not done: since the last time all were settled
        self._active_was = 0
        self._job_notices: dict[int, str] = {}
        self._repeats = Repeats()
        self._status_dirty = True
        self._status_at = 0.0
        self._synced_at = time.monotonic()
        self._detail_id: int | None = None
        self._detail_at = 0.0
        self._window_worker: Worker | None = None
        self._window_again = False
        self._filter_timer: Timer | None = None
        self._detail_timer: Timer | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.idle_gc = IdleCollector()
        # Keys held from the key that opens (or closes) the filter, find or go-to line until
        # the focus has moved: they go to the line (or back to the table), not elsewhere.
        self.typeahead = TypeAhead(self, lambda: (self._table, self._detail))
        self.submitting = 0  # submits started from this UI and not yet recorded
        self._table = JobTable(self.clock, id="jobs")
        self._detail = DetailPane(id="detail")

    # ------------------------------------------------------------ layout and start

    def get_default_screen(self) -> Screen:
        return DashboardScreen(id="_default")

    def compose(self) -> ComposeResult:
        # Kept as attributes: the live timer reaches them four times a second.
        yield StatusLine(id="status-line")
        yield AlertLine(self.alerts, id="alerts")
        yield self._table
        yield self._detail
        yield FilterBar(id="filter")
        yield PromptBar(id="prompt")
        yield LazyFooter()

    def get_driver_class(self) -> type[Driver]:
        # Over SSH every byte counts: the terminal gets only the cells that changed.
        return diff_driver_class(super().get_driver_class())

    @property
    def table(self) -> JobTable:
        return self._table

    @property
    def detail(self) -> DetailPane:
        return self._detail

    async def on_mount(self) -> None:
        if self._opener is not None:
            self.facade = await self._opener.__aenter__()
        self._opened_at = self.clock()
        self.keymap = dict(self.facade.config.keymap)
        if self.keymap:
            self.set_keymap(self.keymap)
            for problem in commands.keymap_problems(self, self._all_bindings()):
                self.toast(f"config [keys]: {problem}", "warning", timeout=20)
        self.query_one(FilterBar).display = False
        self.query_one(PromptBar).display = False
        if self.facade.config.theme:
            if self.facade.config.theme in self.available_themes:
                self.theme = self.facade.config.theme
            else:
                self.toast(f"config: no theme {self.facade.config.theme!r}; ctrl+p, "
                           "\"Change theme\" lists them", "warning")
        table = self.table
        table.facade = self.facade
        self.detail.thumbnails = self.facade.thumbnail
        table.setup_columns()
        self._unsubscribe = self.facade.subscribe(self._on_engine_event)
        await table.reload()
        # The title follows the table's state by itself from here on (watchers below);
        # only the "row N of M" part is refreshed by the live timer, at most 4 times a
        # second: a border change repaints the whole table, too dear for each key-repeat.
        for name in ("flt", "sort_by", "reverse", "total", "marked_count"):
            self.watch(table, name, self._titles_changed, init=False)
        self._update_titles()
        table.focus()
        if self.start_engine:
            try:
                await self.facade.start()
            except Exception as err:  # the dashboard still shows history
                log.exception("engine start")
                self.toast(f"could not resume jobs: {err}", "error")
        # Everything made so far (Textual, the session, the first window, resumed jobs) lives
        # as long as the app: out of the collector's sight, a full collection stops taking
        # a frame's worth of time (75-90 ms) to walk it.
        gc.freeze()
        self.idle_gc.start()
        if self.live:
            self.set_interval(1 / LIVE_HZ, self._live_tick, name="live")
            self.set_interval(1 / CHANGES_HZ, self._pull_changes, name="changes")
        self.run_worker(self._refresh_status(), group="status", exit_on_error=False)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown | events.MouseScrollDown
                      | events.MouseScrollUp) and not event.is_forwarded:  # once a key
            self.idle_gc.touched()  # the next full collection waits until the user pauses
        # Keys behind one that opens or closes a line wait for the focus (typeahead.py).
        if isinstance(event, events.Key | events.Paste) and await self.typeahead.route(
                event, super().on_event):
            return
        await super().on_event(event)

    def _back_to_table(self) -> None:
        """A line closed (⏎ or esc): the focus goes back to the table, and the keys typed
        after the closing key go there once it has it."""
        self.table.focus()
        self.typeahead.release_after_focus()

    async def on_unmount(self) -> None:
        self.idle_gc.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self.facade.close()  # a client's wait for the engine ends with the window
        if self._opener is not None:
            await self._opener.__aexit__(None, None, None)

    def _write_escape(self, sequence: str) -> None:
        # No public Textual API writes raw escapes; the driver is where bell() writes too.
        driver = getattr(self, "_driver", None)
        if driver is not None and not self.is_headless:
            driver.write(sequence)

    # ------------------------------------------------------------ engine events

    def _on_engine_event(self, event: EngineEvent) -> None:
        """Runs inside the engine's call stack: record, never render or await here."""
        if isinstance(event, JobChanged):
            job = event.job
            new = event.previous is None
            self._mark_dirty(job, event.transition, new)
            structural = event.transition or new
            if event.transition and job.state in SETTLED:
                self._settle(job)
            self._status_dirty = self._status_dirty or structural
        elif isinstance(event, Notice):
            if event.job_id is not None:
                self._job_notices[event.job_id] = event.message
            self.toast(event.message, SEVERITY.get(event.level, "information"))
        elif isinstance(event, BudgetChanged | BalanceChanged):
            self._status_dirty = True
        elif isinstance(event, AllSettled):
            self._ended = event  # announced after the last job's own toast, by the timer

    def toast(self, message: str, severity: str = "information", *, timeout: float = 6) -> None:
        """A notification, once: the same words within 20 s are not repeated (outages)."""
        if not self._repeats.first(message, time.monotonic()):
            return
        self.notices.append((severity, message))
        self.notify(message, severity=severity, timeout=timeout,  # type: ignore[arg-type]
                    markup=False)

    def _batch_ended(self, event: AllSettled) -> None:
        words = f"all jobs settled: {event.done} done"
        if event.failed:
            words += f", {event.failed} not done"
        self.toast(words, "information" if not event.failed else "warning")
        if self.facade.config.notify_when_batch_ends:
            self.terminal.bell()
            self.terminal.desktop_notice(f"wan-tui: {words}")

    def _announce_settled(self) -> None:
        """Jobs done: one toast for all that finished within DONE_EVERY_S. Jobs that did
        not finish well: kept on the alert line, by reason, until looked at."""
        failed, done = self.settled.sort(self.alerts, time.monotonic())
        if failed:
            self.query_one(AlertLine).refresh_alerts()
        if done:
            self.toast(done)

    # ------------------------------------------------------------ the live timer

    def _live_tick(self) -> None:
        self.idle_gc.tick()
        now = self.clock()
        dirty, self._dirty = self._dirty, {}
        table = self.table
        resync = False
        with self.batch_update():
            for job, transition, new in dirty.values():
                resync = table.patch(job, transition, new) or resync
            table.tick(now)
        if self.settled.waiting:
            self._announce_settled()
        table.set_trouble(self.facade.poll_trouble())
        if self._ended is not None:
            self._batch_ended(self._ended)
            self._ended = None
        if time.monotonic() - self._synced_at > RESYNC_EVERY_S:
            # A safety net: other processes' changes arrive through _pull_changes.
            self._synced_at = time.monotonic()
            self._status_dirty = resync = True
        if resync or self._window_again:
            self.schedule_window(table.resync)
        elif table.wants_more():
            self.schedule_window(table.extend)
        self._update_titles()
        current = table.current_id
        stale = (self.detail.job is not None and self.detail.job.state.active
                 and time.monotonic() - self._detail_at > DETAIL_EVENTS_EVERY_S)
        if current is not None and (current in dirty or stale):
            self.load_detail(current)
        self.detail.render_now(now)
        if self._status_dirty and time.monotonic() - self._status_at > STATUS_EVERY_S:
            self._status_dirty = False
            self.run_worker(self._refresh_status(), group="status", exit_on_error=False)

    def schedule_window(self, operation: Callable[[], Awaitable[None]]) -> None:
        """One window read at a time; a change meanwhile asks for one more afterwards."""
        if self._window_worker is not None and self._window_worker.is_running:
            self._window_again = True
            return
        self._window_again = False
        self._window_worker = self.run_worker(self._guarded(operation(), "reading history"),
                                              group="window", exit_on_error=False)

    async def _refresh_status(self) -> None:
        self._status_at = time.monotonic()
        try:
            data = await read_status(self.facade, self.table.flt.batch, self.clock())
        except Exception as err:
            log.warning("status: %s", err)
            return
        self.query_one(StatusLine).show(data)
        active = sum(data.counts.get(state, 0) for state in JobState if state.active)
        if self._active_was and not active and not self.facade.is_engine and any(
                self._seen_settle):  # the engine process's AllSettled does not reach here
            self._ended = AllSettled(*self._seen_settle)
        if not active:
            self._seen_settle = [0, 0]
        self._active_was = active
        # The batch's ETA moves with the clock: read it again in a few seconds while jobs
        # run (reading a big batch's running jobs every second would cost key latency).
        if data.batch is not None and data.batch.active:
            self.set_timer(BATCH_EVERY_S, self._batch_moved)

    def _batch_moved(self) -> None:
        self._status_dirty = True

    def _titles_changed(self, _value: object = None) -> None:
        self._update_titles()

    def watch_find_term(self, _term: str | None) -> None:
        self._update_titles()

    def _update_titles(self) -> None:
        bars = self.query(FilterBar)  # none when the live timer ticks as the app closes
        self.table.show_titles(bars.first().value if bars else None, self.find_term)

    # ------------------------------------------------------------ detail

    def on_job_table_row_highlighted(self, event: JobTable.RowHighlighted) -> None:
        job_id = event.job_id
        if job_id != self._detail_id:
            # Holding j scrolls at key-repeat speed: read the timeline once the cursor rests.
            self._detail_id = job_id
            if self._detail_timer is not None:
                self._detail_timer.stop()
            self._detail_timer = self.set_timer(DETAIL_DEBOUNCE_S,
                                                partial(self.load_detail, job_id))
        if self.table.wants_more():
            self.schedule_window(self.table.extend)
        # The "row N of M" subtitle follows at the next tick: a border change repaints the
        # whole table, too dear for every key-repeat.

    def load_detail(self, job_id: int) -> None:
        if self.alerts.seen([job_id]):  # the cursor rests on it: it has been looked at
            self.query_one(AlertLine).refresh_alerts()
        self._detail_id = job_id
        self._detail_at = time.monotonic()
        # Only the newest load matters; this group holds nothing else.
        # A callable, not a coroutine: a load replaced before it starts is never created.
        # (Textual's stubs solve the result type of a callable's coroutine as Never.)
        self.run_worker(partial(self._load_detail, job_id),  # type: ignore[arg-type]
                        group="detail", exclusive=True, exit_on_error=False)

    async def _load_detail(self, job_id: int) -> None:
        job = await self.facade.get(job_id)
        events = await self.facade.events(job_id) if job is not None else []
        if job_id == self._detail_id:
            self.detail.show(job, events, self.clock(), self._job_notices.get(job_id))

    # ------------------------------------------------------------ workers

    async def _guarded(self, work: Awaitable[object], what: str) -> None:
        try:
            await work
        except actions.EXPECTED as err:
            self.toast(f"{what}: {err}", "error", timeout=10)
        except Exception as err:  # a bug in an action must not take the dashboard down
            log.exception("%s", what)
            self.toast(f"{what}: unexpected error ({err})", "error", timeout=10)

    def spawn(self, work: Awaitable[object], what: str, job_ids: Iterable[int] = ()) -> Worker:
        ids = list(job_ids)
        group = f"job-{ids[0]}" if len(ids) == 1 else "bulk"
        return self.run_worker(self._guarded(work, what), group=group, name=what,
                               exit_on_error=False)

    async def _pull_changes(self) -> None:
        """Other windows and engines write to the same history: show their commits
        within a fraction of a second (the engine's own changes arrive as events)."""
        if self.facade.is_engine and not self.facade.stop_requested():
            # This window's engine announces every change it makes, and what other windows
            # write reaches it as work it then announces (pending jobs, requests); the
            # 10 s resync covers the rest. Reading the rows again would double the work.
            return
        try:
            jobs = await self.facade.changes()
            if self.facade.stop_requested() and self.facade.is_engine:
                await self.facade.host.release()
                self.toast("`wan-tui engine stop`: this window no longer follows the jobs",
                           "warning")
                self._status_dirty = True
        except Exception as err:
            log.warning("reading other windows' changes: %s", err)
            return
        self._mark_changed(jobs)
        if jobs:
            self._status_dirty = True

    def _mark_changed(self, jobs: Iterable[Job]) -> None:
        """Rows written by someone else: a job this window has not seen may be new."""
        for job in jobs:
            shown = self.table.jobs.get(job.id)
            moved = shown is None or shown.state != job.state
            if moved and job.state in SETTLED and job.updated_at >= self._opened_at:
                self._settle(job)  # settled by the engine process: announced here too
            self._mark_dirty(job, moved, shown is None)

    def _settle(self, job: Job) -> None:
        if job.id not in self._announced:
            self._announced.add(job.id)
            self.settled.fresh.append(job)
            self._seen_settle[job.state != JobState.DONE] += 1

    def _mark_dirty(self, job: Job, transition: bool, new: bool) -> None:
        earlier = self._dirty.get(job.id)
        if earlier is not None:
            transition, new = transition or earlier[1], new or earlier[2]
        self._dirty[job.id] = (job, transition, new)

    async def show_new_jobs(self, jobs: list[Job]) -> None:
        """The cursor goes to the first job just submitted (its batch leads the status
        line); if the filter hides it, the cursor stays where it was."""
        table = self.table
        if await self.facade.locate(table.flt, table.sort_by, jobs[0].id, table.reverse) \
                is not None:
            await table.reload(jobs[0].id)
        self._status_dirty = True

    def show_jobs(self, jobs: Iterable[Job]) -> None:
        """Rows changed by an action the engine does not announce (a remote delete)."""
        self._mark_changed(jobs)
        self._status_dirty = True

    # ------------------------------------------------------------ keys: view

    def action_focus_detail(self) -> None:
        if self.view == "table":
            self.view = "split"
        self.detail.focus()

    def action_zoom(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]

    def action_resize_detail(self, step: int) -> None:
        if self.view != "split":
            self.view = "split"
        share = self.detail_share + step
        if share in DETAIL_SHARES:
            self.detail_share = share

    def watch_view(self, view: str) -> None:
        self.table.display = view != "detail"
        self.detail.display = view != "table"
        if view == "detail":
            self.detail.focus()
        elif self.focused is None or (view == "table" and self.focused is self.detail):
            self.table.focus()

    def watch_detail_share(self, share: int) -> None:
        self.table.styles.height = f"{10 - share}fr"
        self.detail.styles.height = f"{share}fr"

    async def action_back(self) -> None:  # App.action_back is a coroutine
        table = self.table
        if self.focused is self.detail:
            table.focus()
        elif table.marked:
            table.clear_marks()
        elif self.find_term:
            self.find_term = None
        elif not table.flt.empty:
            self.set_filter("")

    # ------------------------------------------------------------ find, go to, sort

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # n / N move between matches only while a search is on; otherwise the key falls
        # through to its other binding (n: new job).
        if action == "find_step":
            return self.find_term is not None
        return True

    def action_find(self) -> None:
        self.query_one(PromptBar).ask("find", self.find_term or "")

    def action_jump(self) -> None:
        self.query_one(PromptBar).ask("jump")

    def on_prompt_bar_answered(self, event: PromptBar.Answered) -> None:
        bar = self.query_one(PromptBar)
        bar.display = False
        self._back_to_table()
        if event.value is None:
            return
        if event.mode == "jump":
            self.spawn(navigate.jump(self, event.value), "go to")
        elif event.value:
            self.find_term = event.value
            self.action_find_step(1)
        else:
            self.find_term = None

    def action_find_step(self, step: int) -> None:
        if self.find_term:
            self.spawn(navigate.find(self, self.find_term, step), "find")

    def action_sort_step(self, step: int) -> None:
        self.action_sort_by(SORTS[(SORTS.index(self.table.sort_by) + step) % len(SORTS)])

    def action_reverse_sort(self) -> None:
        self.table.reverse = not self.table.reverse
        self.schedule_reload()

    def action_copy_remote_id(self) -> None:
        if self.table.current is not None:
            actions.copy_remote_id(self, self.table.current)

    def action_copy_prompt(self) -> None:
        if self.table.current is not None:
            actions.copy_prompt(self, self.table.current)

    def action_filter(self) -> None:
        self.query_one(FilterBar).open(self.query_one(FilterBar).value)

    def on_input_changed(self, event: Input.Changed) -> None:
        if not isinstance(event.input, FilterBar):
            return
        if self._filter_timer is not None:
            self._filter_timer.stop()
        # Typing fast is not a query per key: apply 150 ms after the last one.
        self._filter_timer = self.set_timer(0.15, lambda: self.apply_filter(event.value))

    def on_filter_bar_closed(self, event: FilterBar.Closed) -> None:
        bar = self.query_one(FilterBar)
        if self._filter_timer is not None:
            self._filter_timer.stop()
        if event.restore is not None:
            bar.value = event.restore
        self._back_to_table()

        def hide() -> None:
            bar.display = False

        self._filter_in_one_frame(bar.value, with_rows=hide)

    def _filter_in_one_frame(self, query: str,
                             with_rows: Callable[[], None] | None = None) -> None:
        """Apply a filter; its first rows and `with_rows` show in one frame (one_frame.py)."""
        in_one_frame(self, lambda rows_in: self.apply_filter(query, after=rows_in,
                                                             before=rows_in), with_rows)

    def apply_filter(self, query: str, after: Callable[[], None] | None = None,
                     before: Callable[[], None] | None = None) -> bool:
        """True when a reload was scheduled (`before` runs with its new rows, `after` once
        it is done)."""
        bars = self.query(FilterBar)
        if not bars:
            return False  # a typing pause timer firing while the app closes
        bar = bars.first()
        if any(word.endswith(":") for word in query.split()):
            return False  # "state:" half typed: not a search for the word "state"
        try:
            flt = JobQuery.parse(query)
        except ValidationError as err:
            bar.border_subtitle = str(err)
            return False
        bar.border_subtitle = ""
        table = self.table
        if flt == table.flt:
            return False
        table.flt = flt
        self._status_dirty = True  # the status line shows the batch filtered to
        self.schedule_reload(after, before)
        return True

    def schedule_reload(self, after: Callable[[], None] | None = None,
                        before: Callable[[], None] | None = None) -> None:
        table = self.table
        keep, row = table.current_id, table.cursor_row
        self.run_worker(self._guarded(self._reload(keep, row, after, before),
                                      "reading history"),
                        group="window", exit_on_error=False)

    async def _reload(self, keep: int | None, row: int,
                      after: Callable[[], None] | None = None,
                      before: Callable[[], None] | None = None) -> None:
        try:
            await self.table.reload(keep, fallback=row, before=before)
        finally:
            if after is not None:
                after()
        current = self.table.current_id
        if current is None:
            self._detail_id = None
            self.detail.show(None, [], self.clock())
        elif current != self._detail_id:
            self.load_detail(current)
        # else: the same job as before; a new one is read once the cursor rests there
        # (RowHighlighted), not in the frame that shows the new rows.

    def action_cycle_sort(self) -> None:
        table = self.table
        self.action_sort_by(SORTS[(SORTS.index(table.sort_by) + 1) % len(SORTS)])

    def action_sort_by(self, sort: str) -> None:
        self.table.sort_by = sort
        self.schedule_reload()

    # ------------------------------------------------------------ keys: jobs

    def _on_targets(self, act: Callable[[WanApp, list[int]], Awaitable[object]],
                    what: str) -> None:
        """An action on the marked jobs, or the highlighted one, in a worker of its own."""
        ids = self.table.targets()
        if ids:
            self.spawn(act(self, ids), what, ids)

    def action_open_file(self) -> None:
        job = self.table.current
        if job is not None:
            self.spawn(actions.open_file(self, job), "open", [job.id])

    def action_play(self) -> None:
        job = self.table.current
        if job is not None:
            media_keys.play(self, job)

    def action_gallery(self) -> None:
        self.spawn(media_keys.gallery(self), "gallery")

    def action_copy_path(self) -> None:
        job = self.table.current
        if job is not None:
            actions.copy_path(self, job)

    def action_quote(self) -> None:
        self._on_targets(actions.quote, "quote")

    def action_requeue(self) -> None:
        self._on_targets(actions.requeue, "re-queue")

    def action_pick(self, verdict: str) -> None:
        self._on_targets(lambda app, ids: actions.pick(app, ids, verdict), "pick")

    def action_cancel_jobs(self) -> None:
        self._on_targets(actions.cancel, "cancel")

    def action_delete_remote(self) -> None:
        self._on_targets(actions.delete, "delete")

    def action_new_job(self) -> None:
        self.spawn(actions.new_job(self), "new job")

    def action_new_job_like(self) -> None:
        """The submission form filled in from the highlighted job, linked to it."""
        job = self.table.current
        if job is not None:
            self.spawn(actions.new_job(self, job), "new job like this")

    def action_vary(self) -> None:
        self._on_targets(actions.vary, "variations")

    def action_batch(self) -> None:
        self.spawn(actions.batch(self), "batch")

    def action_show_trouble(self) -> None:
        """The jobs that did not finish well, in the table; the alert line has done its job."""
        self.alerts.seen(list(self.alerts.unseen))
        self.query_one(AlertLine).refresh_alerts()
        self.set_filter("state:failed,expired,unknown")

    def action_batches(self) -> None:
        self.spawn(actions.batches(self), "batches")

    def filter_query(self) -> str:
        return self.query_one(FilterBar).value

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_rows()))

    def action_request_quit(self) -> None:
        self.spawn(actions.quit_app(self), "quit")

    def action_clear_marks(self) -> None:
        self.table.clear_marks()

    def action_mark_all_visible(self) -> None:
        for job_id in self.table.order:
            self.table.set_mark(job_id, True)

    async def action_top(self) -> None:
        await self.table.jump_top()

    async def action_bottom(self) -> None:
        await self.table.jump_bottom()

    def action_toggle_mark(self) -> None:
        self.table.action_toggle_mark()

    # ------------------------------------------------------------ help and palette

    @classmethod
    def dashboard_bindings(cls) -> list[Binding]:
        """The keys `?` lists and [keys] remaps (docs/reference/keys.md is written from it)."""
        return [*cls.BINDINGS, *JobTable.BINDINGS]  # type: ignore[list-item]

    def _all_bindings(self) -> list[Binding]:
        return self.dashboard_bindings()

    def key_rows(self) -> list[KeyRow]:
        return commands.key_rows(self, self._all_bindings())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from commands.palette(self, self._all_bindings())
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):  # ours asks first; ? lists keys
                yield command

    def set_filter(self, query: str) -> None:
        self.query_one(FilterBar).value = query
        self._filter_in_one_frame(query)
