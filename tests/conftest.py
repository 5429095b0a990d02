"""Shared fixtures: an isolated home, the simulator on a loopback port, a ready engine."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from pg import PgServer

from tui.engine import Engine
from tui.engine.lock import EngineLock
from tui.engine.schedule import PollPolicy
from tui.logs import stop_logging
from tui.providers.venice import VeniceProvider
from tui.sim.server import SimServer
from tui.sim.state import Faults, SimConfig
from tui.store import Store, open_store

VENICE_KEY = "sim-venice-key"
# Test jobs take a fraction of a second; every poll interval shrinks to match.
FAST_POLICY = PollPolicy().scaled(0.02)
T2V = "wan-2.5-preview-text-to-video"

_KEY_VARS = ("VENICE_API_KEY", "APIXO_API_KEY", "ACEDATA_API_TOKEN", "VENICE_BASE_URL",
             "APIXO_BASE_URL", "ACEDATA_BASE_URL", "WAN_TUI_HOME", "WAN_TUI_OUTPUT_DIR",
             "WAN_TUI_DELETE_REMOTE", "WAN_TUI_TIME_SCALE", "WAN_TUI_DATABASE",
             "WAN_TUI_ENGINE_NAME", "PGPASSWORD")


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """A real PostgreSQL server for this test session (one per xdist worker); started the
    first time a test asks for it, stopped and removed at the end (tests/pg.py)."""
    with PgServer.running() as server:
        yield server


@pytest.fixture
def pg_dsn(pg: PgServer) -> str:
    """A fresh database of its own for one test (its DSN, with the password)."""
    return pg.new_database()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test ever sees the developer's keys, config or history (or another test's log)."""
    for var in _KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WAN_TUI_HOME", str(tmp_path / "home"))
    # Engine processes a test's commands start leave soon after their jobs end...
    monkeypatch.setenv("WAN_TUI_ENGINE_IDLE_EXIT_S", "2")
    yield
    stop_logging()
    stop_engines(tmp_path)


def stop_engines(folder: Path) -> None:
    """...and none outlives its test: every wan-tui process whose home is under `folder`
    (an engine, one still starting, a simulator of the demo) is stopped (SIGTERM, then
    SIGKILL) and waited for."""
    import signal
    import time

    mine = [pid for pid in _wan_tui_processes() if _home_of(pid, folder)]
    for pid in mine:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while mine and time.monotonic() < deadline:
        mine = [pid for pid in mine if _alive(pid)]
        time.sleep(0.05)
    for pid in mine:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wan_tui_processes() -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as fh:
                    if b"tui.cli" in fh.read():
                        found.append(int(name))
            except OSError:
                continue
    return found


def _home_of(pid: int, folder: Path) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = dict(item.partition(b"=")[::2] for item in fh.read().split(b"\0") if item)
    except OSError:
        return False
    home = env.get(b"WAN_TUI_HOME", b"").decode(errors="replace")
    return bool(home) and Path(home).is_relative_to(folder)


def processes_naming(folder: Path) -> list[int]:
    """Live processes whose command line or environment names `folder` (the demo's
    simulator, engine and watcher all do)."""
    found, name = [], str(folder).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if (name in cmdline or name in environ) and _alive(int(entry)):
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(")")[-1].split()[0] != "Z"  # a zombie is gone
    return True


class FakeClock:
    """The simulator's job clock: tests move it instead of waiting for jobs to run."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Let the loop run until `check()` (sync or async) is truthy, by the wall: its value,
    or its last falsy one after `timeout` (the caller's assert then says what is missing).
    A loaded machine makes a test slower, never wrong."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.02)


def roomy(faults: Faults | None = None) -> Faults:
    """Rate limits are per real minute while test jobs run at 1/50 pace: unless a test is
    about rate limits, give the simulator (and so, via its headers, our budget) room."""
    faults = faults or Faults()
    if faults.retrieve_limit_per_min == Faults().retrieve_limit_per_min:
        faults.retrieve_limit_per_min = 100_000
    if faults.queue_limit_per_min == Faults().queue_limit_per_min:
        faults.queue_limit_per_min = 100_000
    return faults


@pytest.fixture
def make_sim() -> Iterator[Callable[..., SimServer]]:
    with ExitStack() as stack:
        def make(faults: Faults | None = None, *, real_limits: bool = False,
                 **config) -> SimServer:
            config.setdefault("mean_s", 0.3)
            config.setdefault("video_seconds", 1.0)
            faults = (faults or Faults()) if real_limits else roomy(faults)
            cfg = SimConfig(faults=faults, **config)
            return stack.enter_context(SimServer.running(cfg))
        yield make


@pytest.fixture
async def make_clocked_sim():
    """Simulators on the test's own loop whose job time a FakeClock moves (`server.clock`):
    adapter tests step through a job's states without waiting for it to run."""
    servers = []

    async def make(balance_usd: float = 100.0, **faults) -> SimServer:
        clock = FakeClock()
        config = SimConfig(mean_s=10.0, spread=0.2, seed=5, video_seconds=0.5,
                           balance_usd=balance_usd, faults=Faults(**faults))
        server = SimServer(config, clock=clock)
        server.clock = clock  # the test's handle on job time
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


@pytest.fixture
def sim(make_sim) -> SimServer:
    return make_sim(seed=7)


def sim_env(sim: SimServer, home: Path, **extra: str) -> dict[str, str]:
    """The environment a wan-tui subprocess needs to talk to the simulator."""
    env = {k: v for k, v in os.environ.items() if k not in _KEY_VARS}
    env.update({
        "WAN_TUI_HOME": str(home),
        "VENICE_BASE_URL": sim.url("venice"),
        "VENICE_API_KEY": VENICE_KEY,
        "APIXO_BASE_URL": sim.url("apixo"),
        "APIXO_API_KEY": "sim-apixo-key",
        "ACEDATA_BASE_URL": sim.url("acedata"),
        "ACEDATA_API_TOKEN": "sim-acedata-token",
        "WAN_TUI_TIME_SCALE": "0.02",
    })
    env.update(extra)
    return env


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    st = await open_store(tmp_path / "history.db")
    yield st
    await st.close()


@pytest.fixture
async def make_engine(store: Store, tmp_path: Path):
    made: list[tuple[Engine, list]] = []

    async def make(sim: SimServer, **kw) -> Engine:
        providers = kw.pop("providers", None) or {
            "venice": VeniceProvider(sim.url("venice"), kw.pop("key", VENICE_KEY))}
        kw.setdefault("policy", FAST_POLICY)
        kw.setdefault("rescan_s", 0)
        engine = Engine(store, providers, output_dir=tmp_path / "videos", **kw)
        made.append((engine, list(providers.values())))
        return engine

    yield make
    for engine, providers in made:
        await engine.stop(grace_s=5)
        for provider in providers:
            await provider.aclose()


def as_downloaded(file: str | Path) -> str:
    """The sha256 of a finished video's bytes as the provider sent them (its sidecar says):
    the file itself was remuxed with its recipe, so its own sha256 -- the history's -- differs
    from the simulator's."""
    import json

    from tui.media.recipe import sidecar_path

    return json.loads(sidecar_path(Path(file)).read_text())["file"]["download_sha256"]


def whole_copy_of(folder: Path, remote_sha256: str) -> bool:
    """Whether `folder` holds a finished video of exactly those provider bytes, whole: its
    sidecar names them and the file is the one the sidecar describes."""
    import hashlib
    import json

    from tui.media.recipe import sidecar_path

    for video in folder.glob("*.mp4"):
        side = sidecar_path(video)
        try:
            facts = json.loads(side.read_text())["file"]
        except (OSError, ValueError, KeyError):
            continue
        if (facts["download_sha256"] == remote_sha256
                and hashlib.sha256(video.read_bytes()).hexdigest() == facts["sha256"]):
            return True
    return False


def stored_jobs(db: Path) -> list:
    """Every job in a history file, oldest first (for tests that run wan-tui as a process)."""
    import asyncio

    async def read():
        st = await open_store(db)
        try:
            return await st.list_jobs(order="created", descending=False)
        finally:
            await st.close()
    return asyncio.run(read())


def kill_engine_when(home: Path, condition: Callable[[], bool], timeout: float = 60) -> bool:
    """SIGKILL the engine (the lock's holder) the moment `condition` holds, and wait for
    its lock to be free. False if no engine ran by then (the jobs had ended)."""
    lock = EngineLock(home / "engine.lock")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            pid = lock.holder()
            if pid is None:
                return False
            os.kill(pid, signal.SIGKILL)
            while lock.holder() == pid:
                time.sleep(0.001)
            return True
        time.sleep(0.002)
    raise AssertionError("condition never held")


@pytest.fixture
def team_cli(sim, monkeypatch, tmp_path, capsys, pg_dsn):
    """`wan-tui ARGS` in-process against the simulator, the history in PostgreSQL (a team's;
    `home=` and WAN_TUI_ENGINE_NAME play its machines)."""
    from tui.cli import main

    def run(*args: str, home: str = "home", **env: str) -> tuple[int, str, str]:
        for key, value in sim_env(sim, tmp_path / home, **env).items():
            monkeypatch.setenv(key, value)
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    run.sim = sim
    run.dsn = pg_dsn
    return run
