"""The gallery: finished jobs as a grid of thumbnails with their prompts.

It shows what the table's filter admits (only finished jobs have pictures), newest first
in the table's sort; enter opens the highlighted job in the dashboard, esc goes back.
Pictures load one by one in worker threads (cached in <home>/thumbs), so the grid shows
at once and fills in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui import format as fmt
from tui.app.widgets.picture import Picture, load_image
from tui.jobs import Job

log = logging.getLogger(__name__)

CARD_W = 28  # cells a card takes, gutter included
GALLERY_MAX = 60  # cards at most: the newest under the filter (the table has the rest)


class Card(Vertical, can_focus=True):
    DEFAULT_CSS = """
    Card { width: 26; height: auto; border: round $panel; padding: 0 0; }
    Card:focus { border: round $accent; }
    Card .card-picture { width: 24; height: 7; }
    Card .card-prompt { height: 2; }
    """

    def __init__(self, job: Job) -> None:
        super().__init__(id=f"card-{job.id}")
        self.job = job
        self.picture = Picture(classes="card-picture")
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield self.picture
        yield Static(Text.assemble((f"#{self.job.id} ", "bold"),
                                   fmt.excerpt(self.job.prompt, 44)), classes="card-prompt")

    def set_picture(self, image) -> None:
        self.loaded = True
        if image is not None:
            self.picture.image = image


class GalleryScreen(ModalScreen[int | None]):
    """Dismissed with the id of the job to open, or None."""

    DEFAULT_CSS = """
    GalleryScreen { background: $background 85%; }
    GalleryScreen > VerticalScroll { margin: 1 2; border: round $accent; background: $surface; }
    GalleryScreen Grid { grid-gutter: 0 1; height: auto; }
    GalleryScreen #gallery-empty { padding: 1 2; }
    """
    BINDINGS = [
        Binding("escape,v,q", "close", "back", id="gallery_close"),
        Binding("enter", "open", "open", id="gallery_open"),
        Binding("right,l", "move(1)", "next", show=False, id="gallery_right"),
        Binding("left,h", "move(-1)", "previous", show=False, id="gallery_left"),
        Binding("down,j", "move_rows(1)", "down", show=False, id="gallery_down"),
        Binding("up,k", "move_rows(-1)", "up", show=False, id="gallery_up"),
    ]

    def __init__(self, jobs: list[Job], thumbnails: Callable[[Job], Awaitable[Path | None]],
                 title: str = "finished jobs") -> None:
        super().__init__()
        self.jobs = jobs
        self.thumbnails = thumbnails
        self.cards = [Card(job) for job in jobs]
        self.title_text = title
        self._slots = asyncio.Semaphore(2)  # two decodes at a time on a small machine

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="gallery"):
            if not self.cards:
                yield Static("No finished job with a video under this filter.\n"
                             "esc goes back", id="gallery-empty")
            else:
                yield Grid(*self.cards, id="gallery-grid")

    def on_mount(self) -> None:
        scroll = self.query_one("#gallery", VerticalScroll)
        scroll.border_title = f"{self.title_text} · {len(self.cards)}"
        scroll.border_subtitle = "enter opens · esc back"
        if self.cards:
            self.cards[0].focus()
            for card in self.cards:
                self.run_worker(self._load(card), group="gallery-thumbs",
                                exit_on_error=False)

    def on_resize(self) -> None:
        if self.cards:
            grid = self.query_one(Grid)
            grid.styles.grid_size_columns = self.columns

    @property
    def columns(self) -> int:
        return max(1, (self.size.width - 6) // CARD_W)

    async def _load(self, card: Card) -> None:
        image = None
        try:
            async with self._slots:
                path = await self.thumbnails(card.job)
                image = await asyncio.to_thread(load_image, path) if path else None
        except Exception:  # one bad file leaves its card without a picture, no more
            log.exception("gallery picture of job %s", card.job.id)
        card.set_picture(image)

    def _index(self) -> int:
        focused = self.focused
        return self.cards.index(focused) if isinstance(focused, Card) else 0

    def action_move(self, step: int) -> None:
        if self.cards:
            target = self.cards[max(0, min(len(self.cards) - 1, self._index() + step))]
            target.focus()
            target.scroll_visible(animate=False)

    def action_move_rows(self, step: int) -> None:
        self.action_move(step * self.columns)

    def action_open(self) -> None:
        if self.cards:
            self.dismiss(self.cards[self._index()].job.id)

    def action_close(self) -> None:
        self.dismiss(None)
