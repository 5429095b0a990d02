"""The detail pane: everything about the highlighted job, its timeline from the store, and
its error in full (a toast is gone in seconds; this stays). A finished job also shows what
its video holds, where it falls short of the request, and a picture from its middle.

The text is three parts, each drawn only when it changes: what the job is (drawn when the
job changes), what moves with the clock (progress, cost, file, times: each second while it
runs) and its error and timeline. A running job's pane then costs the clock's few lines a
second, not the whole pane with its timeline."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from tui import format as fmt
from tui.app.facade import Event, Facade
from tui.app.widgets.picture import load_image, make_picture
from tui.app.widgets.rows import PICK_STYLE, STATE_STYLE, progress_cell, state_text
from tui.config import machine_name
from tui.jobs import PICK_GLYPHS, Job, JobState, VideoFacts
from tui.whereabouts import file_elsewhere, follower

log = logging.getLogger(__name__)

PICTURE_COLS = 40  # the picture's width in cells (the widget's 42 less its padding)
LABEL_WIDTH = 11  # the longest label ("remote copy", "last notice"): the parts line up

EMPTY_HINT = ("No job here yet.\n\n"
              "n  submit a job (the price is shown first)\n"
              "b  submit a batch from a JSON Lines file\n"
              "/  filter · ? every key")


def _fields(rows: list[tuple[str, RenderableType]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold grey70", no_wrap=True, width=LABEL_WIDTH)
    grid.add_column(ratio=1)
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def pick_text(job: Job) -> Text:
    """`★ star  2026-12-03 10:42:01`"""
    pick = job.pick or ""
    return Text.assemble((f"{PICK_GLYPHS[pick]} {pick}", PICK_STYLE[pick]),
                         (f"  {fmt.stamp(job.picked_at)}", "grey62"))


def file_text(job: Job) -> Text:
    if not job.file:
        if job.state.final and job.state != JobState.DONE:
            return Text(f"none: the job {'was ' if job.state == JobState.CANCELLED else ''}"
                        f"{job.state}", style="grey62")
        return Text("no local copy yet", style="grey62")
    where = file_elsewhere(job)
    if where is not None:
        # A team's history: the video is on the machine whose engine downloaded it.
        # Folded, not cut with an ellipsis: the path is one long word, and every character
        # of it counts (it is what the user copies by hand when OSC 52 is off).
        text = Text(overflow="fold")
        text.append(fmt.size(job.bytes), style="bold")
        text.append(f" on {where.host}, not on this machine; o / y copy:\n",
                    style="grey62")
        text.append(where.scp)
        return text
    exists = Path(job.file).exists()
    text = Text(job.file, overflow="fold")  # folded, as above
    text.append(f"  {fmt.size(job.bytes)}", style="bold")
    if not exists:
        text.append("  (missing on disk)", style="bold red")
    return text


def team_rows(job: Job, now: float) -> list[tuple[str, RenderableType]]:
    """On a team's history: which engine follows the job (its lease's time left moves with
    the clock) and which machine recorded it. Nothing on one person's history."""
    rows: list[tuple[str, RenderableType]] = []
    holder = follower(job, now)
    # One person's history has leases too (its one engine's): not worth a line there.
    if holder is not None and (job.origin or holder.name != machine_name()):
        late = holder.lease_left_s is not None and holder.lease_left_s < 0
        rows.append(("engine", Text(fmt.follower_text(holder), style="yellow" if late else "")))
    elif job.state == JobState.PENDING and job.origin:
        rows.append(("engine", Text("none yet: waiting for an engine to take its lease",
                                    style="grey62")))
    if job.origin:
        rows.append(("recorded", Text(f"on {job.origin}")))
    return rows


def video_text(video: VideoFacts) -> Text:
    """`1280x720 · 5.0 s · 24 fps · h264 + aac · 1.2 Mb/s`"""
    return Text(fmt.facts_line(video))


def times(job: Job, now: float) -> Text:
    lines = []
    for label, ts in (("created", job.created_at), ("submitted", job.submitted_at),
                      ("started", job.started_at), ("ready", job.ready_at),
                      ("finished", job.finished_at)):
        if ts is not None:
            lines.append(Text.assemble((f"{label:<10}", "grey62"), fmt.stamp(ts),
                                       (f"  {fmt.ago(ts, now)}", "grey62")))
    if job.submitted_at and job.ready_at:
        ran = fmt.duration(job.ready_at - job.submitted_at)
        estimate = f" (estimate {fmt.duration(job.estimate_s)})" if job.estimate_s else ""
        lines.append(Text.assemble(("ran       ", "grey62"), ran + estimate))
    return Text("\n").join(lines)


def timeline(events: list[Event]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="grey62", no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(ratio=1)
    for event in events[-200:]:  # a job polled through an outage can log many lines
        grid.add_row(fmt.stamp(event.at), state_text(event.state),
                     Text(event.detail, style=STATE_STYLE[event.state] if event.state.final
                          and event is events[-1] else ""))
    return grid


def job_parts(job: Job, events: list[Event], now: float,
              notice: str | None) -> tuple[RenderableType, RenderableType, RenderableType]:
    """(what the job is, what moves with the clock, its error and timeline)."""
    head = Text.assemble((f"#{job.id} ", "bold"), state_text(job.state),
                         f"   {job.provider} / {job.model}")
    rows: list[tuple[str, RenderableType]] = [
        ("prompt", Text(job.prompt)),
    ]
    if job.request.negative_prompt:
        rows.append(("negative", Text(job.request.negative_prompt)))
    if job.request.image_url:
        rows.append(("image", Text(fmt.excerpt(job.request.image_url, 120))))
    rows += [
        ("parameters", Text(fmt.parameters_line(job))),
        # only once given: an unjudged job needs no line saying so (* and x are in ?)
        *([("pick", pick_text(job))] if job.pick in PICK_STYLE else []),
        ("remote id", Text(job.remote_id or "– (not submitted yet)")),
    ]
    if job.source_id is not None:  # its lineage: what it was made from, how to see siblings
        rows.append(("made from", Text.assemble(f"#{job.source_id}", (
            f"   filter from:{job.source_id} shows every job made from it", "grey50"))))
    live: list[tuple[str, RenderableType]] = [
        ("progress", progress_cell(job, now)),
        ("cost", Text(f"{fmt.cost_of(job)}   "
                      f"quoted {fmt.money(job.quote_usd, job.cost_is_estimate)}")),
        ("file", file_text(job)),
        *team_rows(job, now),
        *([("sha256", Text(job.sha256, style="grey62"))] if job.sha256 else []),
        *([("video", video_text(job.video).append("   w plays it · v gallery", "grey50"))]
          if job.video else []),
        *[("⚠", Text(line, style="bold yellow")) for line in Facade.video_warnings(job)],
        ("times", times(job, now)),
    ]
    tail: list[tuple[str, RenderableType]] = []
    if job.remote_deleted:
        tail.append(("remote copy", Text("deleted at the provider", style="grey62")))
    if job.error:
        tail.append(("error", Text(job.error, style="bold red")))
    if notice:
        tail.append(("last notice", Text(notice, style="yellow")))
    rest: list[RenderableType] = [_fields(tail)] if tail else []
    return (Group(head, Text(), _fields(rows)), _fields(live),
            Group(*rest, Text(), Text("timeline", style="bold grey70"), timeline(events)))


class DetailPane(VerticalScroll, can_focus=True):
    DEFAULT_CSS = """
    DetailPane #detail-top { height: auto; }
    DetailPane #detail-text { width: 1fr; height: auto; }
    DetailPane #detail-picture { width: 42; height: 0; padding: 0 1; display: none; }
    """
    BINDINGS = [
        Binding("j,down", "scroll_down", "scroll", show=False, id="detail_down"),
        Binding("k,up", "scroll_up", "scroll", show=False, id="detail_up"),
    ]

    def __init__(self, thumbnails: Callable[[Job], Awaitable[Path | None]] | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.job: Job | None = None
        self.events: list[Event] = []
        self.notice: str | None = None
        self._body = Static(EMPTY_HINT, id="detail-body")
        self._live = Static("", id="detail-live")
        self._tail = Static("", id="detail-tail")
        self._shown: list[object] = [None, None, None]  # what each part was drawn from
        self.body: RenderableType = EMPTY_HINT
        # Where the picture comes from (Facade.thumbnail: decoded in a worker thread and
        # cached); which job's picture is wanted, and which one is showing.
        self.thumbnails = thumbnails
        self._picture = make_picture(id="detail-picture")
        self._picture_wanted: tuple[int, str] | None = None
        self.picture_of: int | None = None

    def compose(self):
        with Horizontal(id="detail-top"):
            with Vertical(id="detail-text"):
                yield self._body
                yield self._live
                yield self._tail
            yield self._picture

    def show(self, job: Job | None, events: list[Event], now: float,
             notice: str | None = None) -> None:
        changed_job = (job.id if job else None) != (self.job.id if self.job else None)
        self.job, self.events, self.notice = job, events, notice
        self.render_now(now)
        if changed_job:
            self.scroll_home(animate=False)
        self._want_picture(job)

    def _want_picture(self, job: Job | None) -> None:
        wanted = ((job.id, job.file) if job is not None and job.state == JobState.DONE
                  and job.file and self.thumbnails is not None else None)
        if wanted == self._picture_wanted:
            return
        self._picture_wanted = wanted
        if wanted is None:
            self._hide_picture()
            return
        assert job is not None
        # exclusive: moving on to another job cancels waiting for this one's picture
        self.run_worker(self._load_picture(job, wanted), group="picture", exclusive=True,
                        exit_on_error=False)

    async def _load_picture(self, job: Job, wanted: tuple[int, str]) -> None:
        assert self.thumbnails is not None
        try:
            path = await self.thumbnails(job)
            image = await asyncio.to_thread(load_image, path) if path is not None else None
        except Exception:  # a picture is a nicety: never let it take the dashboard down
            log.exception("picture of job %s", job.id)
            image = None
        if wanted != self._picture_wanted:
            return
        if image is None:
            self._hide_picture()
            return
        # A new widget per picture: an image widget sized "auto" keeps the height it measured
        # while it was empty, so swapping the image in place can leave it 0 rows high.
        fresh = make_picture(id="detail-picture", image=image)
        fresh.display = True
        # Rows from the picture's shape (a cell is about twice as high as wide): "auto"
        # would measure against a parent whose height is itself "auto".
        width, height = image.size
        fresh.styles.height = max(2, round(PICTURE_COLS * height / max(1, width) / 2))
        old = self._picture
        self._picture = fresh
        await old.remove()
        await self.query_one("#detail-top", Horizontal).mount(fresh)
        self.picture_of = job.id

    def _hide_picture(self) -> None:
        self.picture_of = None
        if self._picture.display:
            self._picture.display = False

    def render_now(self, now: float) -> None:
        job = self.job
        if job is None:
            parts: tuple[RenderableType, ...] = (EMPTY_HINT, "", "")
            keys: tuple[object, ...] = ("empty", "empty", "empty")
        else:
            parts = job_parts(job, self.events, now, self.notice)
            # The clock part is compared by its words: a finished job's "3 minutes ago"
            # changes once a minute, a running job's elapsed time once a second.
            holder = follower(job, now)
            clock = (progress_cell(job, now).plain, times(job, now).plain,
                     fmt.follower_text(holder) if holder else "")
            keys = (job, (job, clock), (job, len(self.events), self.notice))
        self.body = Group(*parts)
        for n, (static, part, key) in enumerate(zip(
                (self._body, self._live, self._tail), parts, keys, strict=True)):
            old = self._shown[n]
            if key == old:
                continue
            self._shown[n] = key
            # The same job's clock part keeps its shape while its words move: no layout.
            same_shape = n == 1 and isinstance(old, tuple) and old[0] == job
            static.update(part, layout=not same_shape)

    def plain(self, width: int = 150) -> str:
        """What the pane says, as text (for tests and logs)."""
        from rich.console import Console

        console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
        console.print(self.body)
        return console.export_text()
