"""What `?` lists and what the command palette offers: every binding, by its id, with
the keys the config's [keys] table gave it, plus a few commands that have no key."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.binding import Binding

from tui.app.facade import SORTS
from tui.app.screens.help import KeyRow
from tui.jobs import JobState

if TYPE_CHECKING:
    from tui.app.dashboard import Dashboard

# What each binding does, at length, for `?` and the command palette.
HELP: dict[str, str] = {
    "down": "move down", "up": "move up", "top": "go to the first job",
    "bottom": "go to the last job", "page_down": "page down", "page_up": "page up",
    "focus_detail": "focus the detail pane (esc returns)", "mark": "mark / unmark for bulk actions",
    "filter": "filter: state:failed, model:wan (an id's start), provider:NAME, batch:N, "
              "from:N (made from #N), pick:star|reject|none, words in the prompt",
    "sort": "cycle the sort (created, state, model, provider, cost, updated)",
    "open": "open the finished file (no desktop: show and copy its path; on another "
            "machine of the team: copy `scp HOST:PATH .`)",
    "copy_path": "copy the file's path (OSC 52, works over SSH; on another machine of the "
                 "team: `scp HOST:PATH .`)",
    "play": "watch: play the finished clip in the terminal (esc stops)",
    "gallery": "gallery of finished jobs under the filter (enter opens)",
    "new_job": "new job (submission form with its price)", "batch": "submit a batch from a file",
    "like_this": "new job like this one: the form filled in from the selected job, linked "
                 "to it (from:N)",
    "vary": "variations of the selected / marked jobs: new seeds where the model takes "
            "one, a batch of their own (confirm, with the total)",
    "failures": "show the jobs that did not finish well (and clear the alert line)",
    "batches": "list the batches; pick one to show only its jobs (filter batch:N)",
    "quote": "quote: re-price the selected / marked jobs",
    "requeue": "re-queue failed/expired/cancelled/unknown jobs (confirm, with the price)",
    "cancel": "cancel: stop tracking the selected / marked jobs",
    "delete": "delete the provider's copy of the media (confirm)",
    "zoom": "zoom: both panes, the table alone, the detail alone",
    "detail_taller": "make the detail pane taller (+ or =)",
    "detail_shorter": "make the detail pane shorter (-)",
    "sort_prev": "sort by the column before (<)", "sort_next": "sort by the column after (>)",
    "reverse": "reverse the sort order",
    "find": "find a job by words in its prompt; then n / N go to the next / previous one",
    "find_next": "next match of the find (while one is on; else n is a new job)",
    "find_prev": "previous match of the find",
    "jump": "go to a job by its number",
    "copy_remote_id": "copy the job's remote id (OSC 52)",
    "copy_prompt": "copy the job's prompt (OSC 52)",
    "star": "star the selected / marked takes: kept (again: clear); filter pick:star",
    "reject": "reject the selected / marked takes: set aside (again: clear); pick:reject",
    "help": "this help", "palette": "command palette (every action by name)",
    "back": "back: leave the detail pane, clear marks, then the filter",
    "quit": "quit (the engine goes on; one line says what it follows)",
    "quit_ctrl": "quit, as q does",
}

# Keys shared on purpose: the detail pane's own scroll keys, n/N (only while a find is on).
NO_CLASH_CHECK = frozenset({"find_next", "find_prev", "new_job"})

# Movement is not something to look up by name.
NOT_IN_PALETTE = frozenset({"palette", "down", "up", "page_down", "page_up", "quit_ctrl"})


def keys_of(app: Dashboard, binding: Binding) -> str:
    return app.keymap.get(binding.id or "", binding.key)


def keymap_problems(app: Dashboard, bindings: Iterable[Binding]) -> list[str]:
    """What the config's [keys] table gets wrong: ids that name no binding, and keys given
    to two bindings (Textual would silently let one of them win)."""
    bindings = list(bindings)
    known = {b.id for b in bindings if b.id}
    problems = [f"{binding_id!r} is not a key id (? lists them)"
                for binding_id in app.keymap if binding_id not in known]
    owners: dict[str, list[str]] = {}
    for binding in bindings:
        if binding.id in NO_CLASH_CHECK:
            continue
        for key in keys_of(app, binding).split(","):
            owners.setdefault(key.strip(), []).append(binding.id or binding.action)
    for key, ids in owners.items():
        remapped = [i for i in ids if i in app.keymap]
        if len(ids) > 1 and remapped:
            others = [i for i in ids if i not in remapped] or ids[1:]
            problems.append(f"{key} is given to {remapped[0]} but is also "
                            f"{', '.join(others)}'s key: remap that one too")
    return problems


def key_rows(app: Dashboard, bindings: Iterable[Binding]) -> list[KeyRow]:
    rows: list[KeyRow] = []
    for binding in bindings:
        shown = " ".join(app.get_key_display(Binding(key.strip(), binding.action))
                         for key in keys_of(app, binding).split(","))
        rows.append((shown, HELP.get(binding.id or "", binding.description), binding.id or ""))
    return rows


def _run(app: Dashboard, action: str):
    return lambda: app.run_action(action)


def _filter(app: Dashboard, query: str):
    return lambda: app.set_filter(query)


def palette(app: Dashboard, bindings: Iterable[Binding]) -> Iterator[SystemCommand]:
    for binding in bindings:
        if binding.id in NOT_IN_PALETTE:
            continue
        title = HELP.get(binding.id or "", binding.description)
        yield SystemCommand(title[:1].upper() + title[1:], f"key: {keys_of(app, binding)}",
                            _run(app, binding.action.removeprefix("app.")))
    for sort in SORTS:
        yield SystemCommand(f"Sort by {sort}", "order the table", _run(app, f"sort_by('{sort}')"))
    for state in (JobState.FAILED, JobState.EXPIRED, JobState.PROCESSING, JobState.DONE):
        yield SystemCommand(f"Show only {state} jobs", f"filter state:{state}",
                            _filter(app, f"state:{state}"))
    yield SystemCommand("Clear the filter", "show every job", _filter(app, ""))
    yield SystemCommand("Mark every loaded row", "for a bulk action",
                        _run(app, "mark_all_visible"))
    yield SystemCommand("Clear marks", "unmark every row", _run(app, "clear_marks"))
