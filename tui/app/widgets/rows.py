"""How one job looks as a table row: pure functions from a Job and the time to styled text.

Kept apart from the widget so the cells can be compared (only changed ones are patched)
and tested without a running app.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from tui import format as fmt
from tui.app.facade import Facade
from tui.jobs import PICK_GLYPHS, Job, JobState, progress_of

# Standard colour names: on a 16-colour terminal every state keeps a colour of its own
# (dark_orange, say, fell onto the same red as failed).
STATE_STYLE = {
    JobState.PENDING: "white",
    JobState.SUBMITTING: "bright_cyan",
    JobState.QUEUED: "blue",
    JobState.PROCESSING: "yellow",
    JobState.DOWNLOADING: "cyan",
    JobState.DONE: "green",
    JobState.FAILED: "bold red",
    JobState.EXPIRED: "magenta",
    JobState.CANCELLED: "bright_black",
    JobState.UNKNOWN: "bold bright_magenta",
}

BAR_WIDTH = 8
PICK_STYLE = {"star": "bold yellow", "reject": "bold red"}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    clock: bool = False  # its text moves with the clock while the job is active
    # Which columns go first when the terminal is narrow: the highest number leaves
    # first; 0 always stays (a row must say which job, its state, its progress and what
    # it is of). Nothing scrolls sideways.
    drop: int = 0


COLUMNS: tuple[Column, ...] = (
    Column("mark", " ", 1),
    Column("id", "#", 6),
    Column("state", "state", 13),
    Column("provider", "provider", 8, drop=5),
    Column("model", "model", 22, drop=3),
    Column("prompt", "prompt", 16),  # takes whatever width the others leave
    Column("shape", "length", 10, drop=4),
    Column("progress", "progress", 23, clock=True),
    Column("elapsed", "elapsed", 7, clock=True, drop=1),
    Column("cost", "cost", 7, drop=2),
    Column("size", "size", 9, drop=6),
)
CLOCK_COLUMNS = tuple(c.key for c in COLUMNS if c.clock)
PROMPT_MIN = 16
PADDING = 1  # blank cells either side of every column


def columns_for(width: int) -> tuple[tuple[Column, ...], int]:
    """The columns that fit `width` cells (dropped by priority) and the prompt's width."""
    shown = list(COLUMNS)
    while True:
        others = sum(c.width + 2 * PADDING for c in shown if c.key != "prompt")
        prompt = width - others - 2 * PADDING
        droppable = [c for c in shown if c.drop]
        if prompt >= PROMPT_MIN or not droppable:
            return tuple(shown), max(PROMPT_MIN, prompt)
        shown.remove(max(droppable, key=lambda c: c.drop))


def state_text(state: JobState) -> Text:
    return Text(f"{fmt.GLYPHS[state]} {state.value}", style=STATE_STYLE[state])


def state_cell(job: Job) -> Text:
    """The state, with ⚠ when a finished video is short of its request or looks moderated
    (the detail pane says which)."""
    text = state_text(job.state)
    if Facade.video_warnings(job):
        text.append(" ⚠", style="bold yellow")
    return text


TROUBLE_STYLE = "bold dark_orange"


def progress_cell(job: Job, now: float, trouble: str | None = None) -> Text:
    """A bar from the server's estimate and its words; past the estimate it says overdue
    rather than sit at a 100 % that is not true yet. While its polls fail, ⚠ and why."""
    if trouble is not None and job.state.active:
        return Text(f"⚠ {trouble}", style=TROUBLE_STYLE, no_wrap=True, overflow="ellipsis")
    words = fmt.progress_text(job, now)
    if job.state == JobState.DONE:
        return Text.assemble((fmt.bar(1.0, BAR_WIDTH), "green"), " done")
    if job.state == JobState.DOWNLOADING:
        return Text.assemble((fmt.bar(None, BAR_WIDTH), "magenta"), " ", (words, "magenta"))
    if job.state.final:
        return Text(words, style=STATE_STYLE[job.state])
    if job.state in (JobState.PENDING, JobState.SUBMITTING):
        return Text.assemble((fmt.bar(None, BAR_WIDTH), "grey35"), " ", (words, "grey62"))
    frac, overdue = progress_of(fmt.elapsed_of(job, now), job.estimate_s)
    style = "dark_orange" if overdue else STATE_STYLE[job.state]
    return Text.assemble((fmt.bar(frac, BAR_WIDTH), style), " ", (words, style))


def clock_cells(job: Job, now: float, trouble: str | None = None) -> dict[str, Text]:
    return {
        "progress": progress_cell(job, now, trouble),
        "elapsed": Text(fmt.duration(fmt.elapsed_of(job, now)), justify="right"),
    }


def mark_cell(job: Job, marked: bool) -> Text:
    """The first column: ● while marked for a bulk action, else the pick (★ kept, ✘ set
    aside): one cell for both, so a narrow terminal loses no prompt to a pick column."""
    if marked:
        return Text("●", style="bold magenta")
    if job.pick in PICK_GLYPHS:
        return Text(PICK_GLYPHS[job.pick], style=PICK_STYLE[job.pick])
    return Text(" ", style="bold magenta")  # as before picks: unpicked rows draw the same


def row_cells(job: Job, now: float, marked: bool, trouble: str | None = None) -> dict[str, Text]:
    cells = {
        "mark": mark_cell(job, marked),
        "id": Text(str(job.id), style="grey62", justify="right"),
        "state": state_cell(job),
        "provider": Text(job.provider),
        "model": Text(fmt.excerpt(job.model, 22)),
        # The table crops to the column; the ellipsis shows where the prompt goes on.
        "prompt": Text(fmt.excerpt(job.prompt, 200), no_wrap=True, overflow="ellipsis"),
        "shape": Text(fmt.shape(job)),
        "cost": Text(fmt.cost_of(job), justify="right"),
        "size": Text(fmt.size(job.bytes), justify="right"),
    }
    cells.update(clock_cells(job, now, trouble))
    return cells


def job_id_of(cell: Text) -> int:
    return int(cell.plain)
