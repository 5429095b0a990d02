"""What the dashboard's keys may ask of the app: a small protocol, so that the modules that
carry out the keys (actions.py, media_keys.py) and list them (commands.py) receive the app
without importing app.py, which imports them. WanApp is the one implementation; mypy checks
it against this wherever it hands itself over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from textual.binding import Binding
    from textual.screen import Screen
    from textual.worker import Worker

    from tui.app.facade import Facade
    from tui.app.notify import Terminal
    from tui.app.widgets.job_table import JobTable
    from tui.jobs import Job


class Dashboard(Protocol):
    facade: Facade
    terminal: Terminal  # bell, desktop notices, the clipboard over OSC 52
    clock: Callable[[], float]
    submitting: int  # submits started from this window and not yet recorded
    demo_folder: Path | None

    @property
    def table(self) -> JobTable: ...

    @property
    def keymap(self) -> dict[str, str]: ...

    def toast(self, message: str, severity: str = "information", *,
              timeout: float = 6) -> None: ...

    def show_jobs(self, jobs: Iterable[Job]) -> None: ...

    async def show_new_jobs(self, jobs: list[Job]) -> None: ...

    def load_detail(self, job_id: int) -> None: ...

    def spawn(self, work: Awaitable[object], what: str,
              job_ids: Iterable[int] = ()) -> Worker[Any]: ...

    def filter_query(self) -> str: ...

    def set_filter(self, query: str) -> None: ...

    def get_key_display(self, binding: Binding) -> str: ...

    def run_action(self, action: str, default_namespace: Any = None) -> Awaitable[bool]: ...

    def push_screen(self, screen: Screen[Any], callback: Any = None) -> Any: ...

    def push_screen_wait(self, screen: Screen[Any]) -> Awaitable[Any]: ...

    def exit(self, result: Any = None) -> None: ...
