"""`wan-tui import FOLDER` on the command line (the work is tui/importing.py's; tui/cli.py
declares its arguments and loads this module only when the command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


async def cmd_import(args: Any) -> int:
    from tui.cli import _load_config, one_line
    from tui.errors import EXIT_OK
    from tui.format import money
    from tui.importing import import_folder
    from tui.store import Store

    folder = Path(args.folder).expanduser()
    store = await Store.open(_load_config().db_path)
    try:
        outcome = await import_folder(store, folder)
    finally:
        await store.close()
    added = outcome.added
    batches = sorted({job.batch_id for job in added if job.batch_id is not None})
    cost = sum(job.cost_usd or 0.0 for job in added)
    estimate = any(job.cost_is_estimate for job in added)
    print(f"added {len(added)} job{'s' if len(added) != 1 else ''}"
          + (f" (#{added[0].id}-#{added[-1].id}, {len(batches)} batch"
             f"{'es' if len(batches) != 1 else ''}, {money(cost, estimate)} spent on them)"
             if added else "")
          + f"; {outcome.known} already in the history; {len(outcome.skipped)} skipped")
    for line in outcome.skipped:
        print(one_line(f"  skipped {line}"))
    return EXIT_OK
