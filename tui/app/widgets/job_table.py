"""The job table: a window of a few hundred rows onto a history of any size.

Rows `[base, base + len(order))` of `facade.page(filter, sort)` are in the table; more are
read when the cursor nears either edge. Live changes are patched cell by cell by row key;
a change that may move a row or let one in (a transition under a state sort, a new job)
asks for a resync, which re-reads the window and applies the difference -- rows added,
removed and reordered in place, never cleared and rebuilt. The cursor follows its job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from tui.app.facade import Facade, JobFilter
from tui.app.widgets.rows import CLOCK_COLUMNS, COLUMNS, clock_cells, job_id_of, row_cells
from tui.jobs import Job

PAGE = 200
PROMPT_MIN = 16
EDGE = 30  # rows from a window edge at which the next page is read
ORDER_FIELDS = {"state": "state", "updated": "updated_at", "cost": "cost_usd"}


class JobTable(DataTable):
    inherit_bindings = False  # DataTable's own have no ids; these can be remapped
    BINDINGS = [
        Binding("j,down", "cursor_down", "down", show=False, id="down"),
        Binding("k,up", "cursor_up", "up", show=False, id="up"),
        Binding("g,home", "top", "top", show=False, id="top"),
        Binding("G,end", "bottom", "bottom", show=False, id="bottom"),
        Binding("pagedown,ctrl+f", "page_down", "page down", show=False, id="page_down"),
        Binding("pageup,ctrl+b", "page_up", "page up", show=False, id="page_up"),
        Binding("space", "toggle_mark", "mark", id="mark"),
        Binding("enter", "app.focus_detail", "detail", show=False, id="focus_detail"),
    ]

    def __init__(self, clock, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.clock = clock
        self.facade: Facade | None = None
        self.flt = JobFilter()
        self.sort_by = "created"
        self.base = 0
        self.total = 0
        self.order: list[int] = []
        self.jobs: dict[int, Job] = {}
        self.marked: set[int] = set()
        self._cells: dict[int, dict[str, Text]] = {}
        self._lock = asyncio.Lock()
        self.loaded = asyncio.Event()  # set after the first window is in

    # ------------------------------------------------------------ columns and rows

    def setup_columns(self) -> None:
        for column in COLUMNS:
            self.add_column(column.label, width=column.width, key=column.key)

    @staticmethod
    def prompt_width(table_width: int) -> int:
        """The prompt column gets what the others leave (each has a cell of padding per
        side; the border and the scrollbar take 3)."""
        others = sum(c.width + 2 for c in COLUMNS if c.key != "prompt")
        return max(PROMPT_MIN, table_width - 3 - others - 2)

    def on_resize(self) -> None:
        column = self.columns.get(ColumnKey("prompt"))
        width = self.prompt_width(self.size.width + 2)  # size is inside the border
        if column is not None and column.width != width:
            column.width = width
            # DataTable has no public way to resize a fixed column: drop its render caches
            # and have it measure again, as its own add_column does.
            self._clear_caches()
            self._require_update_dimensions = True
            self.refresh()

    @property
    def current_id(self) -> int | None:
        row = self.cursor_row
        return self.order[row] if 0 <= row < len(self.order) else None

    @property
    def current(self) -> Job | None:
        job_id = self.current_id
        return self.jobs.get(job_id) if job_id is not None else None

    def targets(self) -> list[int]:
        """What a bulk-capable action works on: the marked rows, else the cursor's."""
        if self.marked:
            return sorted(self.marked)
        return [self.current_id] if self.current_id is not None else []

    def _add(self, job: Job, now: float) -> None:
        cells = row_cells(job, now, job.id in self.marked)
        self._cells[job.id] = cells
        self.jobs[job.id] = job
        self.add_row(*(cells[c.key] for c in COLUMNS), key=str(job.id))

    def _drop(self, job_id: int) -> None:
        self.remove_row(str(job_id))
        self._cells.pop(job_id, None)
        self.jobs.pop(job_id, None)

    def _set_cells(self, job_id: int, cells: dict[str, Text]) -> None:
        old = self._cells.setdefault(job_id, {})
        for key, value in cells.items():
            if old.get(key) != value:  # only what changed reaches the screen
                old[key] = value
                self.update_cell(str(job_id), key, value)

    def _reorder(self, ids: list[int]) -> None:
        position = {job_id: n for n, job_id in enumerate(ids)}
        if ids != self.order:
            self.sort("id", key=lambda cell: position[job_id_of(cell)])
        self.order = ids

    def _place_cursor(self, job_id: int | None, fallback: int) -> None:
        if job_id is not None and job_id in self.jobs:
            row = self.order.index(job_id)
        else:
            row = min(max(0, fallback), max(0, len(self.order) - 1))
        if row != self.cursor_row:
            self.move_cursor(row=row, animate=False)

    def _rebuild(self, jobs: list[Job], base: int, total: int, cursor_on: int | None,
                 fallback: int = 0) -> None:
        """A jump (new filter, sort, top, bottom): a different window, not an update."""
        now = self.clock()
        self.clear()
        self._cells.clear()
        self.jobs.clear()
        for job in jobs:
            self._add(job, now)
        self.order = [job.id for job in jobs]
        self.base, self.total = base, total
        self._place_cursor(cursor_on, fallback)

    # ------------------------------------------------------------ reading windows

    async def reload(self, keep: int | None = None, *, fallback: int = 0) -> None:
        """Read the window that holds job `keep` (or the top) under the current filter/sort."""
        assert self.facade is not None
        async with self._lock:
            flt, sort = self.flt, self.sort_by
            total = await self.facade.count(flt)
            pos = await self.facade.locate(flt, sort, keep) if keep is not None else None
            base = 0 if pos is None or pos < PAGE else pos - PAGE // 2
            jobs = await self.facade.page(flt, sort, base, PAGE)
            with self.app.batch_update():
                self._rebuild(jobs, base, total, keep, fallback)
        self.loaded.set()

    async def jump_bottom(self) -> None:
        assert self.facade is not None
        async with self._lock:
            total = await self.facade.count(self.flt)
            base = max(0, total - PAGE)
            jobs = await self.facade.page(self.flt, self.sort_by, base, PAGE)
            with self.app.batch_update():
                self._rebuild(jobs, base, total, jobs[-1].id if jobs else None)

    async def jump_top(self) -> None:
        if self.base == 0:
            self._place_cursor(None, 0)
        else:
            await self.reload(None)
        self.scroll_home(animate=False)

    async def extend(self) -> None:
        """Read the next page when the cursor or the view nears an edge of the window."""
        assert self.facade is not None
        async with self._lock:
            if self._near_bottom() and self.base + len(self.order) < self.total:
                jobs = await self.facade.page(self.flt, self.sort_by,
                                              self.base + len(self.order), PAGE)
                with self.app.batch_update():
                    now = self.clock()
                    for job in jobs:
                        if job.id not in self.jobs:
                            self._add(job, now)
                            self.order.append(job.id)
            elif self._near_top() and self.base > 0:
                await self._extend_up()

    async def _extend_up(self) -> None:
        assert self.facade is not None
        start = max(0, self.base - PAGE)
        jobs = await self.facade.page(self.flt, self.sort_by, start, self.base - start)
        keep = self.current_id
        with self.app.batch_update():
            now = self.clock()
            fresh = [job for job in jobs if job.id not in self.jobs]
            for job in fresh:
                self._add(job, now)
            self.order = [job.id for job in fresh] + self.order
            self._reorder(list(self.order))
            self.base = start
            self._place_cursor(keep, self.cursor_row)

    def _near_bottom(self) -> bool:
        bottom_row = self.scroll_y + self.size.height
        return max(self.cursor_row, bottom_row) >= len(self.order) - EDGE

    def _near_top(self) -> bool:
        # The cursor alone: right after G the view has not scrolled down yet, and its
        # scroll_y of 0 would read a page nobody asked for.
        return self.cursor_row < EDGE

    def wants_more(self) -> bool:
        return ((self._near_bottom() and self.base + len(self.order) < self.total)
                or (self._near_top() and self.base > 0))

    async def resync(self) -> None:
        """Re-read the current window and apply the difference in place."""
        assert self.facade is not None
        async with self._lock:
            flt, sort = self.flt, self.sort_by
            total = await self.facade.count(flt)
            jobs = await self.facade.page(flt, sort, self.base, max(len(self.order), PAGE))
            if (flt, sort) != (self.flt, self.sort_by):
                return  # a reload overtook us
            with self.app.batch_update():
                self._apply(jobs)
                self.total = total

    def _apply(self, jobs: list[Job]) -> None:
        keep, row = self.current_id, self.cursor_row
        now = self.clock()
        wanted = {job.id for job in jobs}
        for job_id in [j for j in self.order if j not in wanted]:
            self._drop(job_id)
        for job in jobs:
            if job.id in self.jobs:
                self.jobs[job.id] = job
                self._set_cells(job.id, row_cells(job, now, job.id in self.marked))
            else:
                self._add(job, now)
        self.order = [j for j in self.order if j in wanted] + [
            j.id for j in jobs if j.id not in self.order]
        self._reorder([job.id for job in jobs])
        self._place_cursor(keep, row)

    # ------------------------------------------------------------ live patches

    def patch(self, job: Job, transition: bool) -> bool:
        """Show a changed job in place. True when the window may need a resync (the job
        may have moved, left, or newly belong here)."""
        if job.id not in self.jobs:
            return transition and self.flt.admits(job)
        old = self.jobs[job.id]
        self.jobs[job.id] = job
        self._set_cells(job.id, row_cells(job, self.clock(), job.id in self.marked))
        field = ORDER_FIELDS.get(self.sort_by)
        moved = field is not None and getattr(old, field) != getattr(job, field)
        return moved or not self.flt.admits(job)

    def tick(self, now: float) -> None:
        """Progress, ETA and elapsed move with the clock for jobs still running."""
        for job_id in self.order:
            job = self.jobs[job_id]
            if job.state.active:
                cells = clock_cells(job, now)
                self._set_cells(job_id, {k: cells[k] for k in CLOCK_COLUMNS})

    # ------------------------------------------------------------ marks and movement

    def set_mark(self, job_id: int, on: bool) -> None:
        if on:
            self.marked.add(job_id)
        else:
            self.marked.discard(job_id)
        if job_id in self.jobs:
            self._set_cells(job_id, {"mark": Text("●" if on else " ", style="bold magenta")})

    def clear_marks(self, ids: Iterable[int] | None = None) -> None:
        for job_id in list(self.marked if ids is None else ids):
            self.set_mark(job_id, False)

    def action_toggle_mark(self) -> None:
        job_id = self.current_id
        if job_id is None:
            return
        self.set_mark(job_id, job_id not in self.marked)
        self.action_cursor_down()

    async def action_top(self) -> None:
        await self.jump_top()

    async def action_bottom(self) -> None:
        await self.jump_bottom()
