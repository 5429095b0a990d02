"""Variations: how many of each selected job, what they cost in all, one confirm.

The form prices the variations for the count typed (nothing is spent) and submits exactly
what it showed: the requests, their seeds and their prices. They become a batch of their
own, each linked to the job it came from (`from:N` in the filter).
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from tui import format as fmt
from tui.app.facade import Facade
from tui.app.screens.result import SubmitResult
from tui.jobs import Job, ValidationError
from tui.providers.base import Quote
from tui.variations import MAX_COUNT, Variation, describe

DEFAULT_COUNT = 3
LISTED = 6  # source jobs named one by one; the rest are counted


class VaryScreen(ModalScreen[SubmitResult | None]):
    BINDINGS = [
        Binding("escape", "close", "Cancel", id="vary_close"),
        Binding("ctrl+s", "submit", "Submit", id="vary_submit"),
    ]

    DEFAULT_CSS = """
    VaryScreen { align: center middle; }
    VaryScreen #vary-box {
        width: 90; max-width: 95%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    VaryScreen #vary-title { text-style: bold; padding-bottom: 1; }
    VaryScreen #vary-count-row { height: auto; }
    VaryScreen #vary-count-label { width: auto; padding: 1 1 0 0; }
    VaryScreen #vary-count { width: 12; }
    VaryScreen #vary-plan { padding-top: 1; }
    VaryScreen #vary-total { text-style: bold; padding-top: 1; }
    VaryScreen #vary-total.bad { color: $error; }
    VaryScreen #vary-buttons { height: auto; align-horizontal: right; padding-top: 1; }
    VaryScreen #vary-buttons Button { margin-left: 2; }
    """

    def __init__(self, facade: Facade, jobs: list[Job], count: int = DEFAULT_COUNT) -> None:
        super().__init__()
        self.facade = facade
        self.jobs = jobs
        self.initial = count
        # What the form shows and would submit: (count, variations, quotes), or None.
        self.priced: tuple[int, list[Variation], list[Quote]] | None = None
        self._done = False

    def compose(self) -> ComposeResult:
        noun = f"#{self.jobs[0].id}" if len(self.jobs) == 1 else f"{len(self.jobs)} jobs"
        with Vertical(id="vary-box"):
            yield Static(f"Variations of {noun}", id="vary-title")
            with Horizontal(id="vary-count-row"):
                yield Static(f"how many of each (1-{MAX_COUNT})", id="vary-count-label")
                yield Input(str(self.initial), id="vary-count", type="integer")
            yield Static(self._sources(), id="vary-plan")
            yield Static("pricing …", id="vary-total")
            with Horizontal(id="vary-buttons"):
                yield Button("Submit (ctrl+s)", id="vary-yes", variant="primary",
                             disabled=True)
                yield Button("Cancel (esc)", id="vary-no")

    def on_mount(self) -> None:
        self.query_one("#vary-count", Input).focus()
        self._price(self.initial)

    def _sources(self) -> Text:
        text = Text()
        for job in self.jobs[:LISTED]:
            how = ("new seed each" if self.facade.takes_seed(job.provider)
                   else "same request again (no seed on this provider)")
            text.append(f"#{job.id} {job.provider}/{fmt.excerpt(job.model, 28)} "
                        f"{fmt.excerpt(job.prompt, 30)}", style="bold")
            text.append(f"  {how}\n")
        if len(self.jobs) > LISTED:
            text.append(f"… and {len(self.jobs) - LISTED} more\n")
        return text

    def _count(self) -> int | None:
        raw = self.query_one("#vary-count", Input).value.strip()
        return int(raw) if raw.isdigit() else None

    @on(Input.Changed, "#vary-count")
    def _count_changed(self) -> None:
        self.query_one("#vary-yes", Button).disabled = True
        count = self._count()
        if count is None:
            self._say(f"give a whole number of variations, 1 to {MAX_COUNT}", bad=True)
            return
        self._price(count)

    @work(exclusive=True, group="vary-price", exit_on_error=False)
    async def _price(self, count: int) -> None:
        self.priced = None
        self._say("pricing …")
        try:
            planned, quotes = await self.facade.vary(self.jobs, count)
        except ValidationError as err:
            self._say(str(err), bad=True)
            return
        except Exception as err:  # a provider that cannot price must not take the form down
            self._say(f"could not price them: {err}", bad=True)
            return
        if count != self._count():
            return  # typed on meanwhile: that count's pricing is on its way
        self.priced = (count, planned, quotes)
        total = Quote(round(sum(q.usd for q in quotes), 4), any(q.estimate for q in quotes))
        self._say(f"{describe(planned)}: {len(planned)} new jobs, total {total.label()}")
        yes = self.query_one("#vary-yes", Button)
        yes.label = f"Submit {len(planned)} for {total.label()} (ctrl+s)"
        yes.disabled = False

    def _say(self, text: str, bad: bool = False) -> None:
        total = self.query_one("#vary-total", Static)
        total.update(text)
        total.set_class(bad, "bad")

    @on(Input.Submitted, "#vary-count")
    def _entered(self) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        priced = self.priced
        if self._done or priced is None or priced[0] != self._count():
            return  # only what the form shows is submitted
        _, planned, quotes = priced
        self._done = True
        self.dismiss(SubmitResult([v.request for v in planned], list(quotes),
                                  [v.source.id for v in planned]))

    def action_close(self) -> None:
        if not self._done:
            self._done = True
            self.dismiss(None)

    @on(Button.Pressed, "#vary-yes")
    def _yes(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#vary-no")
    def _no(self) -> None:
        self.action_close()
