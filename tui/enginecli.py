"""`wan-tui engine run|status|stop`: the engine process, what it is doing, and ending it.

No Textual here. The engine itself is tui/engine/daemon.py; this module opens what it
needs and prints.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from tui import format as fmt
from tui.followcli import EXIT_OK, say


async def engine_run(config: Any, *, spawned: bool = False) -> int:
    """The engine in the foreground (systemd, debugging) or, `spawned` by a client,
    detached with its output in the log file."""
    from tui.engine.daemon import run_engine
    from tui.session import open_session

    # What it does goes to the log file (set up by main) at INFO: nobody watches a
    # detached engine, and a foreground one prints its few lines below as well.
    logging.getLogger("wan_tui").setLevel(logging.INFO)
    async with open_session(config, lock=False, role="engine") as session:
        return await run_engine(session, say=None if spawned else say)


async def read_status(config: Any) -> dict[str, Any]:
    """What `engine status` shows, as one dict (the `--json` form)."""
    from tui.config import machine_name
    from tui.engine.host import status_key
    from tui.engine.lock import EngineLock
    from tui.store import open_store

    # This machine's engine (on a team's database each machine runs its own).
    pid = EngineLock(config.db_path.with_name("engine.lock")).holder()
    store = await open_store(config.history)
    try:
        text = await store.get_meta(status_key(machine_name()))
        counts = await store.counts_by_state()
    finally:
        await store.close()
    try:
        published = json.loads(text) if text else {}
    except ValueError:
        published = {}
    # What the engine published counts only if it is the one holding the lock now.
    live = pid is not None and published.get("pid") == pid
    return {
        "pid": pid,
        "host": published.get("host") if live else None,
        "started": published.get("since") if live else None,
        "active_jobs": sum(n for s, n in counts.items() if s.active),
        "budgets": published.get("budgets", []) if live else [],
        "halts": dict(published.get("halted") or {}) if live else {},
        "balances": dict(published.get("balances") or {}) if live else {},
        "log_file": (published.get("log") if live else None) or str(config.log_file),
    }


async def engine_status(config: Any, *, as_json: bool = False) -> int:
    status = await read_status(config)
    if as_json:
        print(json.dumps(status, indent=2, sort_keys=True))
        return EXIT_OK
    pid, since = status["pid"], status["started"]
    if pid is None:
        say("engine     none running (a window or command starts one when there is work)")
    else:
        when = (f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
                f" ({fmt.duration(time.time() - since)})" if since else "")
        where = f" on {status['host']}" if status["host"] else ""
        say(f"engine     pid {pid}{where}{when}")
        for b in status["budgets"]:
            say(f"budget     {b['provider']} {b['rate_class']}: {b['used']}/{b['limit']} "
                "requests in the last minute")
        for provider, b in status["balances"].items():
            can = "can spend" if b.get("can_consume") else "CANNOT spend"
            say(f"balance    {provider} {b.get('label')} ({b.get('currency') or '?'}, {can})")
        for provider, reason in status["halts"].items():
            say(f"halted     {provider}: {reason}")
    active = status["active_jobs"]
    say(f"active     {active} job{'s' if active != 1 else ''}")
    say(f"log        {status['log_file']}")
    return EXIT_OK


UNIT_NAME = "wan-tui-engine"
# How to install what `engine unit` prints (its first comment lines, and docs/engine.md).
INSTALL = (
    ("wan-tui", "engine", "unit", ">", f"~/.config/systemd/user/{UNIT_NAME}.service"),
    ("systemctl", "--user", "daemon-reload"),
    ("systemctl", "--user", "enable", "--now", UNIT_NAME),
    ("loginctl", "enable-linger", '"$USER"'),  # keeps it running after you log out
)
UNIT = """\
# A systemd user unit for the wan-tui engine (`wan-tui engine unit` wrote it). Install:
{install}
# Windows and commands find it through the history's lock and start no other engine.
[Unit]
Description=wan-tui engine: follows the video jobs and downloads them
After=network-online.target

[Service]
ExecStart={python} -m tui.cli engine run
# Keys come from the config file (0600) or from this file, never from the command line.
EnvironmentFile=-{config_dir}/engine.env
{home}# Never leave when idle under systemd: it would only be started again.
Environment=WAN_TUI_ENGINE_IDLE_EXIT_S=inf
Restart=on-failure
# A paid submit on the wire is waited for (its deadline) before the engine stops.
TimeoutStopSec=60

[Install]
WantedBy=default.target
"""


def engine_unit(config: Any) -> int:
    """Print a systemd user unit that runs this engine (this Python, this home)."""
    import os
    import sys

    home = os.environ.get("WAN_TUI_HOME")
    install = "\n".join("#   " + " ".join(argv) for argv in INSTALL)
    print(UNIT.format(python=sys.executable, config_dir=config.config_file.parent,
                      install=install,
                      home=f"Environment=WAN_TUI_HOME={home}\n" if home else ""), end="")
    return EXIT_OK


async def engine_stop(config: Any) -> int:
    from tui.session import open_session

    async with open_session(config, lock=False, role="stop", serves=False) as s:
        pid = s.host.lock.holder()
        if pid is None:
            say("no engine is running")
            return EXIT_OK
        await s.host.stop_engine()
    say(f"pid {pid} stopped following the jobs (requests on the wire were answered first); "
        "the next window or command with work starts another")
    return EXIT_OK
