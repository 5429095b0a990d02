"""Opening everything a front end needs: config → store, providers, lock, engine."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tui.config import Config
from tui.engine import Engine
from tui.engine.clock import Clock
from tui.engine.lock import EngineLock
from tui.engine.schedule import PollPolicy
from tui.providers import build_providers
from tui.providers.base import Provider
from tui.store import Store


@dataclass
class Session:
    config: Config
    store: Store
    providers: dict[str, Provider]
    engine: Engine
    # A second connection for the dashboard's reads: WAL lets it read while the engine's
    # connection writes, instead of queueing behind every poll's commit.
    reader: Store | None = None


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


@asynccontextmanager
async def open_session(
    config: Config,
    *,
    lock: bool = True,
    follow: bool = True,
    clock: Clock | None = None,
    policy: PollPolicy | None = None,
    providers: dict[str, Provider] | None = None,
) -> AsyncIterator[Session]:
    """Yields a ready session. With `lock`, raises EngineBusy if another engine runs."""
    engine_lock = EngineLock(config.db_path.with_name("engine.lock")) if lock else None
    if engine_lock is not None:
        engine_lock.acquire()
    store = await Store.open(config.db_path)
    try:
        reader = await Store.open(config.db_path)
    except BaseException:
        await store.close()
        raise
    providers = providers if providers is not None else build_providers(config)
    engine = Engine(
        store,
        providers,
        output_dir=config.output_dir,
        delete_after_download=config.delete_remote_after_download,
        max_active=config.max_concurrent_jobs,
        follow=follow,
        clock=clock,
        policy=policy or policy_from_env(),
        rescan_s=5.0 if lock else 0.0,
    )
    try:
        yield Session(config, store, providers, engine, reader)
    finally:
        await engine.stop()
        for provider in providers.values():
            await provider.aclose()
        await reader.close()
        await store.close()
        if engine_lock is not None:
            engine_lock.release()
