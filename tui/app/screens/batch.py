"""The batch modal: read a JSON Lines file, show every line checked and priced, submit all.

All or nothing: one bad line (`line N: reason`) and nothing can be submitted, so a batch
never half-runs. What is submitted is exactly what was shown, even if the file changes later.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Static

from tui.app.facade import BatchCheck, Facade
from tui.app.screens.result import SubmitResult
from tui.batchfile import swept_from
from tui.providers.base import Quote

PROMPT_EXCERPT = 24
# (label, width): fixed widths so a long problem wraps inside its cell instead of running
# off the right edge of the dialog.
COLUMNS = (("line", 4), ("provider", 8), ("model", 30), ("prompt", PROMPT_EXCERPT),
           ("price / problem", 38))


def excerpt(prompt: str, width: int = PROMPT_EXCERPT) -> str:
    flat = " ".join(prompt.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def total_label(quotes: list[Quote]) -> str:
    """The batch total, labelled an estimate when any line's price is one."""
    return Quote(round(sum(q.usd for q in quotes), 4), any(q.estimate for q in quotes)).label()


def submittable(check: BatchCheck | None) -> bool:
    return (check is not None and check.ok and bool(check.requests)
            and len(check.quotes) == len(check.requests))


class BatchScreen(ModalScreen[SubmitResult | None]):
    """Batch from file: returns SubmitResult(all requests, their quotes) or None."""

    BINDINGS = [
        Binding("escape", "close", "Cancel", id="close"),
        Binding("ctrl+s", "submit", "Submit all", id="submit"),
        Binding("ctrl+r", "reload", "Reload file", id="reload"),
    ]

    DEFAULT_CSS = """
    BatchScreen { align: center middle; }
    BatchScreen #dialog {
        width: 120; max-width: 95%; height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    BatchScreen #title { text-style: bold; padding-bottom: 1; }
    BatchScreen #path-row { height: auto; }
    BatchScreen #path { width: 1fr; }
    BatchScreen #status { padding: 1 0 0 0; }
    BatchScreen #status.bad { color: $error; text-style: bold; }
    BatchScreen #lines { height: 1fr; margin-top: 1; }
    BatchScreen #total { text-style: bold; padding-top: 1; }
    BatchScreen #buttons { height: auto; align-horizontal: right; }
    BatchScreen #buttons Button { margin-left: 2; }
    """

    def __init__(self, facade: Facade, path: Path | None = None) -> None:
        super().__init__()
        self.facade = facade
        self.initial_path = path
        self.check: BatchCheck | None = None  # what the table shows (None: nothing loaded)
        self._done = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Batch from file (JSON Lines: one request object per line; "
                         '"sweep" expands a line)', id="title")
            with Horizontal(id="path-row"):
                yield Input(str(self.initial_path or ""), id="path",
                            placeholder="path to a .jsonl file (~ works); enter loads it")
                yield Button("Load", id="load")
            yield Static("", id="status")
            yield DataTable(id="lines", cursor_type="row", zebra_stripes=True)
            yield Static("", id="total")
            with Horizontal(id="buttons"):
                yield Button("Submit all", id="submit", variant="primary", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        table = self.query_one("#lines", DataTable)
        for label, width in COLUMNS:
            table.add_column(label, width=width)
        if self.initial_path is not None:
            self.action_reload()
        else:
            self.query_one("#path", Input).focus()

    # ------------------------------------------------------------ loading

    def action_reload(self) -> None:
        raw = self.query_one("#path", Input).value.strip()
        if not raw:
            self._set_status("give the path of a batch file", bad=True)
            return
        self._load(Path(raw).expanduser())

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#load")
    def _load_requested(self) -> None:
        self.action_reload()

    @on(Input.Changed, "#path")
    def _path_edited(self) -> None:
        # The table no longer matches the path: nothing is submittable until it is reloaded.
        if self.check is not None and str(self.check.path) != self._typed_path():
            self.query_one("#submit", Button).disabled = True
            self._set_status("path changed: enter loads the new file")

    def _typed_path(self) -> str:
        return str(Path(self.query_one("#path", Input).value.strip()).expanduser())

    @work(exclusive=True, group="batch-check", exit_on_error=False)
    async def _load(self, path: Path) -> None:
        self.check = None
        self.query_one("#submit", Button).disabled = True
        self._set_status(f"checking {path} …")
        try:
            check = await self.facade.check_batch(path)
        except Exception as err:  # a broken file or provider must not take the modal down
            self._set_status(f"cannot check {path}: {err}", bad=True)
            return
        self._show(check)

    def _show(self, check: BatchCheck) -> None:
        self.check = check
        table = self.query_one("#lines", DataTable)
        table.clear()
        prices = iter(check.quotes)
        variants = iter(check.variants)
        # Keyed by position: a sweep's requests all come from one line number.
        for index, (number, req, problem) in enumerate(check.lines):
            variant = next(variants, "")
            if req is None:
                table.add_row(str(number), "", "", "", Text(problem, style="bold red"),
                              key=str(index), height=None)  # as tall as the wrapped reason
                continue
            quote = next(prices, None)
            price = quote.label() if quote else "valid (not priced)"
            if variant:  # which of the sweep's combinations this row is
                price = f"{price}  {variant}"
            table.add_row(str(number), req.provider, req.model, excerpt(req.prompt), price,
                          key=str(index))
        problems = [problem for _, req, problem in check.lines if req is None]
        if check.error:
            self._set_status(check.error + ": nothing can be submitted", bad=True)
        elif problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            self._set_status(f"{problems[0]}{more}: fix the file, then ctrl+r", bad=True)
        else:
            self._set_status(f"{check.path}: every line is valid and priced")
        total = self.query_one("#total", Static)
        if submittable(check):
            swept = swept_from(check.sources, len(check.requests))
            total.update(f"{len(check.requests)} jobs{swept} · total "
                         f"{total_label(check.quotes)}")
        else:
            total.update(f"{len(check.requests)} of {len(check.lines)} lines valid")
        self.query_one("#submit", Button).disabled = not submittable(check)

    def _set_status(self, text: str, bad: bool = False) -> None:
        status = self.query_one("#status", Static)
        status.update(text)
        status.set_class(bad, "bad")

    # ------------------------------------------------------------ actions

    def action_submit(self) -> None:
        check = self.check
        if self._done or not submittable(check) or self.query_one("#submit", Button).disabled:
            return
        assert check is not None
        self._done = True
        self.dismiss(SubmitResult(check.requests, list(check.quotes)))

    def action_close(self) -> None:
        if not self._done:
            self._done = True
            self.dismiss(None)

    @on(Button.Pressed, "#submit")
    def _submit_pressed(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_close()
