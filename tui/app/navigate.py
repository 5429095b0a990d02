"""Going to a job: by its number (`#`) or by words in its prompt (`f`, then n / N), in the
table's order and under its filter. Both read the history through the facade and move the
table's cursor, reading a new window when the job is outside the one shown."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.app.dashboard import Dashboard

FIND_LIMIT = 5000  # matches `f` looks through


async def jump(app: Dashboard, text: str) -> None:
    number = text.lstrip("#")
    if not number.isdigit():
        app.toast(f"go to: {text!r} is not a job number (e.g. 42)", "warning")
        return
    job_id = int(number)
    table = app.table
    if await app.facade.get(job_id) is None:
        app.toast(f"there is no job #{job_id}", "warning")
    elif await app.facade.locate(table.flt, table.sort_by, job_id, table.reverse) is None:
        app.toast(f"#{job_id} is hidden by the filter (esc clears it)", "warning")
    else:
        await table.reload(job_id)


async def find(app: Dashboard, term: str, step: int) -> None:
    """The next (or previous) job after the cursor, in the table's order, whose prompt
    has these words; around to the other end when there is none (as in vim)."""
    table, facade = app.table, app.facade
    flt, sort, reverse = table.flt, table.sort_by, table.reverse
    words = f"{flt.text} {term}" if flt.text else term
    matches = [job.id for job in await facade.page(replace(flt, text=words), sort, 0,
                                                    FIND_LIMIT, reverse=reverse)]
    if not matches:
        app.toast(f"find: no job's prompt has {term!r}", "warning")
        return
    here = table.base + table.cursor_row if table.order else -1

    async def position(n: int) -> int:
        return await facade.locate(flt, sort, matches[n], reverse) or 0

    # Matches come in table order: the first one past the cursor, found by halves.
    lo, hi = 0, len(matches)
    while lo < hi:
        mid = (lo + hi) // 2
        if await position(mid) > here:
            hi = mid
        else:
            lo = mid + 1
    if step > 0:
        target = matches[lo % len(matches)]
    else:
        at = lo - 1
        if at >= 0 and await position(at) == here:
            at -= 1
        target = matches[at % len(matches)]
    if target in table.order:
        table.move_cursor(row=table.order.index(target))
    else:
        await table.reload(target)
