"""`wan-tui import FOLDER` on the command line. The work is tui/importing.py's: this module
stays light, since the parser (tui/cliparser.py) is built for every command and `--help`."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    imp = sub.add_parser("import", help="rebuild history entries from videos that carry their "
                         "recipe (sidecar or tags); never calls a provider")
    imp.add_argument("folder", type=Path, help="the folder to read (its subfolders too)")


async def cmd_import(args: Any) -> int:
    from tui.clisteps import one_line, user_config
    from tui.errors import EXIT_OK
    from tui.format import money
    from tui.importing import import_folder
    from tui.store import open_store

    folder = Path(args.folder).expanduser()
    store = await open_store(user_config().history)
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
