"""Opening everything a front end needs: config → store, providers, lock, engine."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tui.config import Config
from tui.engine import Engine
from tui.engine.clock import Clock, ServerClock
from tui.engine.host import EngineHost
from tui.engine.lock import EngineBusy, EngineLock
from tui.engine.schedule import PollPolicy
from tui.providers import build_providers
from tui.providers.base import Provider
from tui.store import Store, open_store


@dataclass
class Session:
    config: Config
    store: Store
    providers: dict[str, Provider]
    engine: Engine
    # A second connection for the dashboard's reads: WAL lets it read while the engine's
    # connection writes, instead of queueing behind every poll's commit.
    reader: Store
    # Whether this process is the engine or a client of another one, and how to act.
    host: EngineHost


def policy_from_env() -> PollPolicy:
    """`WAN_TUI_TIME_SCALE` shrinks every poll interval (the demo and tests use fast jobs)."""
    scale = os.environ.get("WAN_TUI_TIME_SCALE")
    policy = PollPolicy()
    if scale:
        try:
            factor = float(scale)
        except ValueError:
            factor = 1.0
        if 0 < factor < 1:
            policy = policy.scaled(factor)
    return policy


def log_path(config: Config) -> str:
    """Where a process without a terminal writes what it does (tui/logs.py sets it up)."""
    return str(config.log_file)


@asynccontextmanager
async def open_session(
    config: Config,
    *,
    lock: bool = True,
    follow: bool = True,
    clock: Clock | None = None,
    policy: PollPolicy | None = None,
    providers: dict[str, Provider] | None = None,
    role: str = "dashboard",
    serves: bool = True,
) -> AsyncIterator[Session]:
    """Yields a ready session. With `lock`, this process must be the engine (raises
    EngineBusy if another one is); without, it starts as a client and may claim the
    engine later through `session.host`. Nothing is started: callers do that."""
    store = await open_store(config.history)
    try:
        reader = await open_store(config.history)
    except BaseException:
        await store.close()
        raise
    providers = providers if providers is not None else build_providers(config)
    if clock is None and store.machine is not None:  # a team's: the server's time
        clock = ServerClock(lambda: store.clock_offset)
    engine = Engine(
        store,
        providers,
        output_dir=config.output_dir,
        delete_after_download=config.delete_remote_after_download,
        write_sidecars=config.write_sidecars,
        max_active=config.max_concurrent_jobs,
        follow=follow,
        clock=clock,
        policy=policy or policy_from_env(),
        rescan_s=0.0,  # the host's inbox notices other windows' jobs instead
        lease_s=config.engine_lease_s,
    )
    # One engine per home (the flock); on a team's database, one per machine, each
    # following its own jobs under leases (tui/engine/leases.py).
    host = EngineHost(engine, reader, EngineLock(config.db_path.with_name("engine.lock")),
                      role=role, log_path=log_path(config), serves=serves)
    try:
        if lock and not await host.claim(start=False):
            raise EngineBusy(
                f"another wan-tui (pid {host.lock.holder() or '?'}) is already running "
                "these jobs; stop it or let it finish")
        yield Session(config, store, providers, engine, reader, host)
    finally:
        await host.release()
        for provider in providers.values():
            await provider.aclose()
        await reader.close()
        await store.close()
