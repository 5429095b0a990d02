"""`wan-tui db ...`: moving a history to a team's PostgreSQL database (docs/team.md)."""

from __future__ import annotations

import argparse

from tui.errors import EXIT_OK, EXIT_USAGE, WanError


class DbUsageError(WanError):
    exit_status = EXIT_USAGE


def add_parser(sub) -> None:
    db = sub.add_parser("db", help="the history's database: copy it to a team's PostgreSQL")
    actions = db.add_subparsers(dest="db_action", metavar="ACTION", required=True,
                                help="copy: this machine's history into PostgreSQL")
    copy = actions.add_parser(
        "copy", help="copy this machine's SQLite history (jobs, events, batches) into "
                     "PostgreSQL; run again, it changes nothing")
    copy.add_argument("target", nargs="?", metavar="postgresql://USER@HOST/DB",
                      help="the database (default: WAN_TUI_DATABASE or `database` in the "
                           "config); its password from PGPASSWORD or ~/.pgpass, never here")
    copy.add_argument("--force", action="store_true",
                      help="copy into a database that already has jobs (the same jobs are "
                           "left as they are; another history's job ids are refused)")
    copy.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                      help=argparse.SUPPRESS)


def _target(args, config) -> str:
    from tui.store import is_server_dsn
    from tui.store.postgres import dsn_password

    if args.target is None:
        if not config.database:
            raise DbUsageError("name the database (`wan-tui db copy postgresql://USER@HOST/DB`)"
                               " or set WAN_TUI_DATABASE")
        return str(config.database)
    if not is_server_dsn(args.target):
        raise DbUsageError("the target must be a postgresql://USER@HOST/DB URL")
    if dsn_password(args.target):
        # Said without echoing it: the command line is in `ps` and the shell's history.
        raise DbUsageError("leave the password out of the command line (`ps` shows it): put "
                           "it in ~/.pgpass or PGPASSWORD, or in WAN_TUI_DATABASE")
    return str(args.target)


async def cmd_db(args) -> int:
    from tui.config import load_config
    from tui.store.copy import copy_history
    from tui.store.postgres import mask_dsn

    config = load_config()
    target = _target(args, config)
    done = await copy_history(config.db_path, target, force=args.force)
    again = f", {done.already_there} already there" if done.already_there else ""
    print(f"copied {done.jobs} jobs ({done.batches} batches{again}) and their events from "
          f"{config.db_path} to {mask_dsn(target)}")
    if not config.database:
        print("use it on every machine: WAN_TUI_DATABASE=postgresql://USER@HOST/DB "
              "(or `database = \"...\"` in the config)")
    return EXIT_OK
