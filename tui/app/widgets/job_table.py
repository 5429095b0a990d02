"""The job table: a window of a few hundred rows onto a history of any size.

Rows `[base, base + len(order))` of `facade.page(filter, sort)` are in the table; more are
read when the cursor nears either edge. Live changes are patched cell by cell by row key;
a change that may move a row or let one in (a transition under a state sort, a new job)
asks for a resync, which re-reads the window and applies the difference -- rows added,
removed and reordered in place, never cleared and rebuilt. The cursor follows its job.

Drawn with Textual's Line API: each row is one `Strip`, cached per job and drawn again only
when that row's cells change (or the cursor arrives or leaves); each cell's segments are
cached too, so a row whose clock ticked draws two cells, not eleven. A live patch, a tick of
the clock columns or a cursor move repaints the few lines it touched, not the whole table; a
row's cells are only made (from the Job, through rich) once the row is on screen. Rows that
leave the window (a jump with G, g or a filter) are kept aside for a while: jumping back
compares their cells with the Job as it is now and draws only the cells that changed.

The last few windows are kept too, as they were shown: a jump back to one of them (esc
after a filter, g after G) shows it at once, then reads the history and applies the
difference -- one frame later, the rows are as current as after any read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui import format as fmt
from tui.app.facade import Facade, JobQuery
from tui.app.widgets.rows import (
    CLOCK_COLUMNS,
    COLUMNS,
    PADDING,
    Column,
    clock_cells,
    columns_for,
    row_cells,
)
from tui.jobs import Job

PAGE = 200
EDGE = 30  # rows from a window edge at which the next page is read
SPARE = 1000  # drawn rows kept after they leave the window (a few MB at most)
KEPT_WINDOWS = 4  # windows shown before, to show again at once
ORDER_FIELDS = {"state": "state", "updated": "updated_at", "cost": "cost_usd"}


@dataclass(frozen=True)
class _Window:
    """A window as it was shown: under which filter, sort and direction, where."""

    view: tuple[JobQuery, str, bool]
    base: int
    total: int
    jobs: tuple[Job, ...]

    @property
    def at_bottom(self) -> bool:
        return self.base + len(self.jobs) >= self.total


class RowStrip(Strip):
    """A Strip that never keeps itself in its own caches.

    Textual's Strip remembers the result of `adjust_cell_length` and `crop_extend`, even
    when that result is the strip itself: a reference cycle, which only Python's full
    garbage collection frees. Every row the table draws goes through both, and rows are
    drawn again each second while jobs run: with 1 000 jobs that made 150 000 objects of
    cyclic garbage a minute and full collections of 40-400 ms in the middle of the keys.
    """

    def adjust_cell_length(self, cell_length: int, style: Style | None = None) -> Strip:
        if cell_length == self.cell_length:
            return self
        return super().adjust_cell_length(cell_length, style)

    def crop_extend(self, start: int, end: int, style: Style | None) -> Strip:
        if start == 0 and end == self.cell_length:
            return self
        return super().crop_extend(start, end, style)


def _add_run(segments: list[Segment], text: str, style: Style | None) -> None:
    """Append a run of text, into the last segment when it has the same style: runs of
    one style are one segment, so every frame sends fewer colour codes."""
    if segments and segments[-1].style == style:
        segments[-1] = Segment(segments[-1].text + text, style)
    else:
        segments.append(Segment(text, style))


def _cell_segments(console: Console, text: Text, width: int, style: Style,
                   post: Style | None) -> list[Segment]:
    """One cell in the row's `style` (then `post` over it), padded to its column: cropped
    (with … where the text says so), justified. What `Segment.apply_style` over rich's
    rendering gives, made directly: a table of new rows draws a few hundred cells in the
    frame that shows them."""
    line = text
    if "\n" in line.plain:
        line = line.split()[0]
    if line.cell_len > width:
        line = line.copy()
        line.truncate(width, overflow=text.overflow or "crop")
    space = width - line.cell_len
    if text.justify == "right":
        left, right = space, 0
    elif text.justify == "center":
        left, right = space // 2, space - space // 2
    else:
        left, right = 0, space
    pad = style + post if post else style
    if line.spans:
        inner = [(part, own) for part, own, _ in line.render(console)]
    else:  # rich applies the text's own style only when it has spans
        own = console.get_style(line.style, default=Style.null()) if line.style else None
        inner = [(line.plain, own)]
    out = [Segment(" " * (PADDING + left), pad)]
    for part, own in inner:
        look = style + own if own else style
        _add_run(out, part, look + post if post else look)
    _add_run(out, " " * (right + PADDING), pad)
    return out


class JobTable(ScrollView, can_focus=True):
    inherit_bindings = False  # the scroll container's keys have no ids; these can be remapped
    BINDINGS = [
        Binding("j,down", "cursor_down", "down", show=False, id="down"),
        Binding("k,up", "cursor_up", "up", show=False, id="up"),
        Binding("g,home", "top", "top", show=False, id="top"),
        Binding("G,end", "bottom", "bottom", show=False, id="bottom"),
        Binding("pagedown,ctrl+f", "page_down", "page down", show=False, id="page_down"),
        Binding("pageup,ctrl+b", "page_up", "page up", show=False, id="page_up"),
        Binding("space", "toggle_mark", "mark", id="mark"),
        # Only while a search is on (WanApp.check_action); otherwise n is a new job.
        Binding("n", "app.find_step(1)", "next match", show=False, id="find_next"),
        Binding("N", "app.find_step(-1)", "previous match", show=False, id="find_prev"),
        Binding("enter", "app.focus_detail", "detail", show=False, id="focus_detail"),
    ]
    COMPONENT_CLASSES = {"job-table--header", "job-table--cursor"}
    # DataTable's look, which this table replaced.
    DEFAULT_CSS = """
    JobTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .job-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .job-table--header {
                background-tint: $foreground 5%;
            }
        }
        & > .job-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .job-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    class RowHighlighted(Message):
        """The cursor is on another job (moved, or the rows moved under it)."""

        def __init__(self, table: JobTable, job_id: int) -> None:
            super().__init__()
            self.table = table
            self.job_id = job_id

        @property
        def control(self) -> JobTable:
            return self.table

    header_height = 1

    # What the table's title says; the app watches them (nothing repaints the rows).
    flt: reactive[JobQuery] = reactive(JobQuery(), repaint=False, init=False)
    sort_by: reactive[str] = reactive("created", repaint=False, init=False)
    reverse: reactive[bool] = reactive(False, repaint=False, init=False)  # the other way round
    total: reactive[int] = reactive(0, repaint=False, init=False)
    marked_count: reactive[int] = reactive(0, repaint=False, init=False)

    def __init__(self, clock, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.facade: Facade | None = None
        self.base = 0
        self.order: list[int] = []
        self.jobs: dict[int, Job] = {}
        self.marked: set[int] = set()
        self.trouble: dict[int, str] = {}  # jobs whose polls are failing: why, in short
        # Cells of the rows drawn so far (made on first sight), compared on every patch.
        self._cells: dict[int, dict[str, Text]] = {}
        self._row_of: dict[int, int] = {}  # job id -> index in order
        self._version: dict[int, int] = {}  # bumped whenever a row's cells change
        self._strips: dict[int, tuple[tuple, Strip]] = {}  # job id -> (key, its drawn row)
        # job id -> column -> (the cell's Text, width, row style, its styled segments)
        self._segments: dict[int, dict[str, tuple[Text, int, Style, list[Segment]]]] = {}
        # Drawn rows no longer in the window, oldest first: (cells, segments, strip, version).
        self._spare: dict[int, tuple[dict[str, Text], dict, tuple[tuple, Strip] | None,
                                     int]] = {}
        self._header: tuple[tuple, Strip] | None = None
        self.columns: tuple[Column, ...] = COLUMNS  # those that fit, in their order
        self._widths = [c.width for c in COLUMNS]
        self._cursor = 0
        self._highlighted: int | None = None
        self._styles: tuple[Style, Style, Style, Style] | None = None
        self._lock = asyncio.Lock()
        self._windows: list[_Window] = []  # oldest first
        self._view_shown: tuple[JobQuery, str, bool] | None = None  # the window's view
        self.loaded = asyncio.Event()  # set after the first window is in

    # ------------------------------------------------------------ columns and geometry

    def setup_columns(self) -> None:
        self._set_widths()

    def _set_widths(self) -> None:
        # The content width less the scrollbar's cell (the border is outside `size`).
        columns, prompt = columns_for(self.size.width - 1)
        widths = [prompt if c.key == "prompt" else c.width for c in columns]
        if widths != self._widths or columns != self.columns:
            self.columns = columns
            self._widths = widths
            self._forget_drawing()
            self._header = None
            self.refresh()
        self._update_virtual_size()

    @property
    def _row_width(self) -> int:
        return sum(w + 2 * PADDING for w in self._widths)

    def _update_virtual_size(self) -> None:
        size = Size(self._row_width, len(self.order) + self.header_height)
        if self.virtual_size != size:
            self.virtual_size = size

    def on_resize(self, event: events.Resize) -> None:
        self._set_widths()
        self._scroll_to_cursor()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._forget_drawing()
        self._header = None
        self.refresh()

    # Public handlers (Textual runs its own private ones too); each row's cached strip is
    # keyed by its style, so the repaint that focus asks for draws the new look.
    def on_focus(self, event: events.Focus) -> None:
        self._styles = None  # the cursor and the background look different with focus

    def on_blur(self, event: events.Blur) -> None:
        self._styles = None

    # ------------------------------------------------------------ the public surface

    @property
    def row_count(self) -> int:
        return len(self.order)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def current_id(self) -> int | None:
        row = self._cursor
        return self.order[row] if 0 <= row < len(self.order) else None

    @property
    def current(self) -> Job | None:
        job_id = self.current_id
        return self.jobs.get(job_id) if job_id is not None else None

    def show_titles(self, filter_text: str | None, find_term: str | None) -> None:
        """The border: count, sort, filter and find above; `row N of M` and marks below.
        Set only when the words change: a border change repaints the whole table."""
        arrow = "↓" if (self.sort_by != "state") != self.reverse else "↑"
        title = f"jobs · {fmt.count(self.total)} · sort {self.sort_by} {arrow}"
        if not self.flt.empty:
            title += f" · filter {filter_text or '…'}"
        if find_term:
            title += f" · find {find_term!r} (n/N)"
        row = self.base + self.cursor_row + 1 if self.order else 0
        subtitle = f"{fmt.count(row)} of {fmt.count(self.total)}"
        if self.marked:
            subtitle = f"{len(self.marked)} marked · " + subtitle
        if self.border_title != title:
            self.border_title = title
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle

    def targets(self) -> list[int]:
        """What a bulk-capable action works on: the marked rows, else the cursor's."""
        if self.marked:
            return sorted(self.marked)
        return [self.current_id] if self.current_id is not None else []

    def get_cell(self, row_key: str, column_key: str) -> Text:
        return self._cells_of(int(row_key))[column_key]

    def update_cell(self, row_key: str, column_key: str, value: Text) -> None:
        """Change one cell; only its row is drawn again."""
        job_id = int(row_key)
        self._cells_of(job_id)[column_key] = value
        self._changed(job_id)

    def move_cursor(self, *, row: int, animate: bool = False) -> None:
        self._set_cursor(row)

    def _forget_drawing(self) -> None:
        """Widths or looks changed: no drawn row or cell is any use now."""
        self._strips.clear()
        self._segments.clear()
        self._spare.clear()

    # ------------------------------------------------------------ rows

    def _cells_of(self, job_id: int) -> dict[str, Text]:
        cells = self._cells.get(job_id)
        if cells is None:
            cells = row_cells(self.jobs[job_id], self.clock(), job_id in self.marked,
                              self.trouble.get(job_id))
            spare = self._spare.pop(job_id, None)
            if spare is not None:  # drawn before: keep what is the same, and its drawing
                old, segments, strip, version = spare
                cells = {key: old[key] if old.get(key) == text else text
                         for key, text in cells.items()}
                self._segments[job_id] = segments
                if all(cells[key] is old.get(key) for key in cells):
                    self._version[job_id] = version
                    if strip is not None:
                        self._strips[job_id] = strip
                else:
                    self._version[job_id] = version + 1
            self._cells[job_id] = cells
        return cells

    def _changed(self, job_id: int) -> None:
        self._version[job_id] = self._version.get(job_id, 0) + 1
        row = self._row_of.get(job_id)
        if row is not None:
            self._refresh_row(row)

    def _refresh_row(self, row: int) -> None:
        top = int(self.scroll_y)
        if top <= row < top + self.scrollable_content_region.height:
            self.refresh_line(row + self.header_height)

    def _set_cells(self, job_id: int, cells: dict[str, Text]) -> None:
        old = self._cells.get(job_id)
        if old is None:
            return  # never drawn: its cells are made from the Job when it comes into view
        for key, value in cells.items():
            if old.get(key) != value:  # only what changed reaches the screen
                self.update_cell(str(job_id), key, value)

    def _set_order(self, ids: list[int]) -> None:
        moved = ids != self.order
        self.order = ids
        self._row_of = {job_id: n for n, job_id in enumerate(ids)}
        for job_id in [j for j in (*self._strips, *self._cells) if j not in self._row_of]:
            self._forget(job_id)
        self._update_virtual_size()
        if moved:
            self.refresh()  # every row is drawn from its cache: cheap

    def _forget(self, job_id: int) -> None:
        """The row leaves the window, or its clock cells went stale: its cells are made
        afresh when it is seen again, reusing what it drew that is still the same."""
        strip = self._strips.pop(job_id, None)
        cells = self._cells.pop(job_id, None)
        segments = self._segments.pop(job_id, {})
        version = self._version.pop(job_id, 0)
        if cells is not None:
            self._spare.pop(job_id, None)
            self._spare[job_id] = (cells, segments, strip, version)
            if len(self._spare) > SPARE:
                del self._spare[next(iter(self._spare))]

    def _set_cursor(self, row: int) -> None:
        row = min(max(0, row), max(0, len(self.order) - 1))
        old = self._cursor
        self._cursor = row
        if old != row:
            self._refresh_row(old)
            self._refresh_row(row)
        self._scroll_to_cursor()
        job_id = self.current_id
        if job_id is not None and job_id != self._highlighted:
            self._highlighted = job_id
            self.post_message(self.RowHighlighted(self, job_id))

    def _scroll_to_cursor(self) -> None:
        visible = self.scrollable_content_region.height - self.header_height
        if visible <= 0:
            return
        top = int(self.scroll_y)
        row = self._cursor
        if row < top:
            self.scroll_to(y=row, animate=False, force=True)
        elif row >= top + visible:
            self.scroll_to(y=row - visible + 1, animate=False, force=True)

    def _place_cursor(self, job_id: int | None, fallback: int) -> None:
        if job_id is not None and job_id in self._row_of:
            row = self._row_of[job_id]
        else:
            row = min(max(0, fallback), max(0, len(self.order) - 1))
        self._set_cursor(row)

    def _rebuild(self, jobs: list[Job], base: int, total: int, cursor_on: int | None,
                 fallback: int = 0) -> None:
        """A jump (new filter, sort, top, bottom): a different window, not an update.
        The size is set once (no layout pass for an empty table in between)."""
        self._keep_window()
        self._view_shown = self._view()
        # Every drawn row is set aside: the ones still here are made again from their Job
        # as just read (a row drawn from an older Job would otherwise stay as it was),
        # reusing whatever they drew that is still the same.
        for job_id in list(self._cells):
            self._forget(job_id)
        self.jobs.clear()
        self.jobs.update((job.id, job) for job in jobs)
        self._cursor = 0
        self._set_order([job.id for job in jobs])
        self.refresh()
        self.base, self.total = base, total
        self._place_cursor(cursor_on, fallback)

    # ------------------------------------------------------------ drawing

    def _row_styles(self) -> tuple[Style, Style, Style, Style]:
        """(base, header, cursor, cursor foreground) for the current focus and theme."""
        if self._styles is None:
            base = self.rich_style
            header = base + self.get_component_rich_style("job-table--header")
            cursor = self.get_component_rich_style("job-table--cursor")
            self._styles = (base, header, base + cursor, Style.from_color(cursor.color))
        return self._styles

    def _draw(self, texts: Iterable[Text], style: Style, post: Style | None,
              cache: dict[str, tuple[Text, int, Style, list[Segment]]] | None = None) -> Strip:
        """One row. With `cache` (the row's own, by column), a cell whose Text, width and
        style are those it was drawn with last time is not drawn again."""
        console = self.app.console
        segments: list[Segment] = []
        for column, text, width in zip(self.columns, texts, self._widths, strict=True):
            drawn = cache.get(column.key) if cache is not None else None
            if drawn is not None and drawn[0] is text and drawn[1] == width \
                    and drawn[2] is style:
                cell = drawn[3]
            else:
                cell = _cell_segments(console, text, width, style, post)
                if cache is not None:
                    cache[column.key] = (text, width, style, cell)
            _add_run(segments, cell[0].text, cell[0].style)  # joins the cell before
            segments.extend(cell[1:])
        return RowStrip(segments, self._row_width)

    def _header_strip(self) -> Strip:
        _, header, _, _ = self._row_styles()
        key = (header, tuple(self._widths), self.columns)
        if self._header is None or self._header[0] != key:
            strip = self._draw((Text(c.label) for c in self.columns), header, None)
            self._header = (key, strip)
        return self._header[1]

    def _row_strip(self, row: int) -> Strip:
        job_id = self.order[row]
        base, _, cursor, cursor_fg = self._row_styles()
        on_cursor = row == self._cursor
        style = cursor if on_cursor else base
        cells = self._cells_of(job_id)  # first, as it may bring back a kept row's drawing
        key = (self._version.get(job_id, 0), style)
        cached = self._strips.get(job_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        strip = self._draw((cells[c.key] for c in self.columns), style,
                           cursor_fg if on_cursor else None,
                           self._segments.setdefault(job_id, {}))
        self._strips[job_id] = (key, strip)
        return strip

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x, scroll_y = self.scroll_offset
        base = self._row_styles()[0]
        if y < self.header_height:
            strip = self._header_strip()
        else:
            row = scroll_y + y - self.header_height
            if not 0 <= row < len(self.order):
                return RowStrip.blank(width, base)
            strip = self._row_strip(row)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= self.header_height:
            row = int(self.scroll_y) + offset.y - self.header_height
            if row < len(self.order):
                self._set_cursor(row)

    # ------------------------------------------------------------ reading windows

    def _view(self) -> tuple[JobQuery, str, bool]:
        return (self.flt, self.sort_by, self.reverse)

    def _keep_window(self) -> None:
        if self._view_shown is None or not self.order:
            return
        shown = _Window(self._view_shown, self.base, self.total,
                        tuple(self.jobs[job_id] for job_id in self.order))
        self._windows = [w for w in self._windows
                         if (w.view, w.base) != (shown.view, shown.base)][-KEPT_WINDOWS + 1:]
        self._windows.append(shown)

    def _kept(self, fits: Callable[[_Window], bool]) -> _Window | None:
        view = self._view()
        for window in reversed(self._windows):
            if window.view == view and fits(window):
                return window
        return None

    def _show_kept(self, window: _Window | None, cursor_on: int | None, fallback: int = 0,
                   before: Callable[[], None] | None = None) -> bool:
        """Show a window kept from before at once (the caller reads it again next)."""
        if window is None:
            return False
        self._jump(list(window.jobs), window.base, window.total, cursor_on, fallback, before)
        return True

    def _jump(self, jobs: list[Job], base: int, total: int, cursor_on: int | None,
              fallback: int = 0, before: Callable[[], None] | None = None) -> None:
        """A window in place of the one shown, in one frame with what `before` changes."""
        with self.app.batch_update():
            if before is not None:
                before()
            self._rebuild(jobs, base, total, cursor_on, fallback)

    def _refresh_window(self, jobs: list[Job], base: int, total: int, cursor_on: int | None,
                        fallback: int) -> None:
        """The rows just read, over a kept window shown a moment ago: in place when it is
        the same stretch of the history, else as a jump."""
        with self.app.batch_update():
            if base == self.base:
                self._apply(jobs)
                self.total = total
                self._place_cursor(cursor_on, fallback)
            else:
                self._rebuild(jobs, base, total, cursor_on, fallback)

    async def reload(self, keep: int | None = None, *, fallback: int = 0,
                     before: Callable[[], None] | None = None) -> None:
        """Read the window that holds job `keep` (or the top) under the current filter/sort.
        `before` runs in the same batch as the new rows (a layout change, one frame)."""
        assert self.facade is not None
        async with self._lock:
            flt, sort = self.flt, self.sort_by
            shown = self._show_kept(
                self._kept(lambda w: keep in (j.id for j in w.jobs) if keep is not None
                           else w.base == 0), keep, fallback, before)
            # The job on screen says whether the filter's columns hide it: no read for that.
            pos = (await self.facade.locate(flt, sort, keep, self.reverse,
                                            seen=self.jobs.get(keep))
                   if keep is not None else None)
            base = 0 if pos is None or pos < PAGE else pos - PAGE // 2
            jobs = await self.facade.page(flt, sort, base, PAGE, reverse=self.reverse)
            # A page that is not full ends the list: it tells the total without a count
            # (most filters), one read less before the rows show.
            total = (base + len(jobs) if len(jobs) < PAGE
                     else await self.facade.count(flt))
            if shown:
                self._refresh_window(jobs, base, total, keep, fallback)
            else:
                self._jump(jobs, base, total, keep, fallback, before)
        self.loaded.set()

    async def jump_bottom(self) -> None:
        assert self.facade is not None
        async with self._lock:
            kept = self._kept(lambda w: w.at_bottom)
            self._show_kept(kept, kept.jobs[-1].id if kept and kept.jobs else None)
            total = await self.facade.count(self.flt)
            base = max(0, total - PAGE)
            jobs = await self.facade.page(self.flt, self.sort_by, base, PAGE,
                                          reverse=self.reverse)
            last = jobs[-1].id if jobs else None
            if kept is not None:
                self._refresh_window(jobs, base, total, last, len(jobs) - 1)
            else:
                self._jump(jobs, base, total, last)

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
                                              self.base + len(self.order), PAGE,
                                              reverse=self.reverse)
                fresh = [job for job in jobs if job.id not in self.jobs]
                self.jobs.update((job.id, job) for job in fresh)
                self._set_order(self.order + [job.id for job in fresh])
            elif self._near_top() and self.base > 0:
                await self._extend_up()

    async def _extend_up(self) -> None:
        assert self.facade is not None
        start = max(0, self.base - PAGE)
        jobs = await self.facade.page(self.flt, self.sort_by, start, self.base - start,
                                      reverse=self.reverse)
        keep = self.current_id
        with self.app.batch_update():
            fresh = [job for job in jobs if job.id not in self.jobs]
            self.jobs.update((job.id, job) for job in fresh)
            self._set_order([job.id for job in fresh] + self.order)
            self.base = start
            # The rows on screen stay where they were: the new ones are above the view.
            self.scroll_to(y=self.scroll_y + len(fresh), animate=False, force=True)
            self._place_cursor(keep, self._cursor)

    def _near_bottom(self) -> bool:
        bottom_row = self.scroll_y + self.size.height
        return max(self._cursor, bottom_row) >= len(self.order) - EDGE

    def _near_top(self) -> bool:
        # The cursor alone: right after G the view has not scrolled down yet, and its
        # scroll_y of 0 would read a page nobody asked for.
        return self._cursor < EDGE

    def wants_more(self) -> bool:
        return ((self._near_bottom() and self.base + len(self.order) < self.total)
                or (self._near_top() and self.base > 0))

    async def resync(self) -> None:
        """Re-read the current window and apply the difference in place."""
        assert self.facade is not None
        async with self._lock:
            flt, sort, reverse = self.flt, self.sort_by, self.reverse
            total = await self.facade.count(flt)
            jobs = await self.facade.page(flt, sort, self.base, max(len(self.order), PAGE),
                                          reverse=reverse)
            if (flt, sort, reverse) != (self.flt, self.sort_by, self.reverse):
                return  # a reload overtook us
            with self.app.batch_update():
                self._apply(jobs)
                self.total = total

    def _apply(self, jobs: list[Job]) -> None:
        keep, row = self.current_id, self._cursor
        now = self.clock()
        for job in jobs:
            if job.id in self.jobs:
                if self.jobs[job.id] != job:
                    self.jobs[job.id] = job
                    if job.id in self._cells:
                        self._set_cells(job.id, row_cells(job, now, job.id in self.marked,
                                                          self.trouble.get(job.id)))
            else:
                self.jobs[job.id] = job
        wanted = {job.id for job in jobs}
        for job_id in [j for j in self.jobs if j not in wanted]:
            del self.jobs[job_id]
        self._set_order([job.id for job in jobs])
        self._place_cursor(keep, row)

    # ------------------------------------------------------------ live patches

    def patch(self, job: Job, transition: bool, new: bool = False) -> bool:
        """Show a changed job in place. True when the window may need a resync (the job
        may have moved, left, or newly belong here)."""
        if job.id not in self.jobs:
            if new:
                return self.flt.admits(job)
            # A job outside the window stays outside unless the change can move it in the
            # order or in or out of the filter: with 1 000 jobs running, re-reading the
            # window for every state change elsewhere would cost every key its latency.
            return transition and (self.flt.states is not None
                                   or self.sort_by in ORDER_FIELDS)
        old = self.jobs[job.id]
        self.jobs[job.id] = job
        if job.id in self._cells:  # rows never drawn are made from the Job when they are
            self._set_cells(job.id, row_cells(job, self.clock(), job.id in self.marked,
                                              self.trouble.get(job.id)))
        field = ORDER_FIELDS.get(self.sort_by)
        moved = field is not None and getattr(old, field) != getattr(job, field)
        return moved or not self.flt.admits(job)

    def tick(self, now: float) -> None:
        """Progress, ETA and elapsed move with the clock for jobs still running: for the
        rows on screen (the others are made afresh when they come into view)."""
        top = int(self.scroll_y)
        height = self.scrollable_content_region.height
        for job_id in self.order[top:top + height]:
            job = self.jobs[job_id]
            if job.state.active and job_id in self._cells:
                cells = clock_cells(job, now, self.trouble.get(job_id))
                self._set_cells(job_id, {k: cells[k] for k in CLOCK_COLUMNS})
        # Rows off screen keep no clock cells: they would be stale when scrolled back to.
        for job_id in self.order[:top] + self.order[top + height:]:
            if job_id in self._cells and self.jobs[job_id].state.active:
                self._forget(job_id)

    def set_trouble(self, trouble: dict[int, str]) -> None:
        """Which jobs' polls are failing now, and why: their rows say so (⚠) until a
        poll works again."""
        if trouble == self.trouble:
            return
        changed = set(trouble) ^ set(self.trouble) | {
            job_id for job_id in trouble if self.trouble.get(job_id) != trouble[job_id]}
        self.trouble = dict(trouble)
        now = self.clock()
        for job_id in changed:
            if job_id in self._cells and job_id in self.jobs:
                self._set_cells(job_id, clock_cells(self.jobs[job_id], now,
                                                    self.trouble.get(job_id)))

    # ------------------------------------------------------------ marks and movement

    def set_mark(self, job_id: int, on: bool) -> None:
        if on:
            self.marked.add(job_id)
        else:
            self.marked.discard(job_id)
        self.marked_count = len(self.marked)
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

    def action_cursor_down(self) -> None:
        self._set_cursor(self._cursor + 1)

    def action_cursor_up(self) -> None:
        self._set_cursor(self._cursor - 1)

    def action_page_down(self) -> None:
        self._set_cursor(self._cursor + max(1, self.scrollable_content_region.height - 1))

    def action_page_up(self) -> None:
        self._set_cursor(self._cursor - max(1, self.scrollable_content_region.height - 1))

    async def action_top(self) -> None:
        await self.jump_top()

    async def action_bottom(self) -> None:
        await self.jump_bottom()
