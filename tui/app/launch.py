"""Starting the dashboard: on the user's history, or on a throwaway demo with the simulator.

The engine runs on the app's own event loop: one `asyncio.run` opens the session, runs the
app, and closes the session after it (a submit still on the wire is waited for).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.app.facade import Facade
    from tui.config import Config
    from tui.engine.schedule import PollPolicy
    from tui.jobs import JobRequest


def run_dashboard(config: Config) -> int:
    return asyncio.run(dashboard(config))


async def dashboard(config: Config, *, policy: PollPolicy | None = None,
                    before: Any = None, demo_folder: Path | None = None) -> int:
    """Open the session and run the app: as the engine if none runs, else as its client.

    `before(facade)` runs once the session is open and before the engine starts (the demo
    records its first jobs there, so the app resumes them like any history).

    The engine outlives the window: when the terminal goes away (SIGHUP) or SIGTERM
    arrives, the app stops drawing and this process keeps following every active job,
    headless, until none is left. When the user quits with jobs active, they choose to hand
    them to a background engine (the default), to stop following, or to stay.
    """
    from tui.app.app import WanApp
    from tui.app.facade import Facade
    from tui.engine.signals import StopSignals
    from tui.session import open_session
    from tui.termcaps import pictures

    # Ask the terminal what it draws now: once the app runs, its input thread takes answers.
    pictures(config.images)

    async with open_session(config, lock=False, policy=policy) as session:
        facade = Facade(session)
        if before is not None and await session.host.claim(start=False):
            await before(facade)
        app = WanApp(facade)
        # The demo's simulator lives in this process: nothing could follow its jobs later,
        # and its folder goes when it ends (quitting says so first).
        app.background_ok = demo_folder is None
        app.demo_folder = demo_folder
        # The first SIGHUP/SIGTERM ends the app; the engine goes on below without it.
        signals = StopSignals(on_hangup=lambda: app.exit(0),
                              on_stop=lambda _name: app.exit(0))
        with signals:
            await app.run_async()
            await facade.close()
            if signals.received and session.host.is_engine:
                await _follow_headless(session, signals)
            elif app.after_quit == "background" and session.host.is_engine \
                    and session.engine.active_count:
                await _hand_to_background(session)
        return app.return_code or 0


async def _follow_headless(session: Any, signals: Any) -> None:
    """The terminal is gone (or SIGTERM came): keep following until nothing is active,
    or until a second SIGTERM/SIGINT (then stop as any headless engine does)."""
    import logging

    log = logging.getLogger("wan_tui")
    if not signals.hung_up:
        from tui.engine.signals import detach_from_terminal

        detach_from_terminal()
    signals.stop.clear()  # the signal that ended the app is spent: the next one stops
    log.info("dashboard closed: following %d active jobs headless", session.engine.active_count)
    idle = asyncio.ensure_future(session.engine.wait_idle())
    stop = asyncio.ensure_future(signals.stop.wait())
    asked = asyncio.ensure_future(session.host.stop_requested.wait())
    await asyncio.wait({idle, stop, asked}, return_when=asyncio.FIRST_COMPLETED)
    for task in (idle, stop, asked):
        task.cancel()
    await session.host.release(grace_s=30.0)


async def _hand_to_background(session: Any) -> None:
    from tui.engine.background import spawn_background_engine

    pid = spawn_background_engine(session.host.log_path)
    await session.host.release()  # the background engine takes the lock once it is free
    print(f"wan-tui: pid {pid} follows the active jobs in the background "
          f"(`wan-tui engine status`; log {session.host.log_path})")


# ---------------------------------------------------------------- the demo

DEMO_PROMPTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("venice", "wan-2.5-preview-text-to-video",
     "A red fox trots through fresh snow at dawn, breath steaming, low tracking shot",
     {"resolution": "720p", "aspect_ratio": "16:9"}),
    ("apixo", "wan-2-5-t2v",
     "Rain on a neon-lit Tokyo crossing at night, umbrellas drifting, slow dolly in",
     {"resolution": "720p"}),
    ("acedata", "wan2.6-t2v", "A paper boat sails down a gutter stream after a summer storm",
     {}),
    ("venice", "wan-2-7-text-to-video",
     "Time-lapse of clouds rolling over a mountain ridge, golden hour [sim:expire]",
     {"resolution": "1080p"}),
    ("venice", "kling-2.6-pro-text-to-video",
     "An astronaut plants a flag that turns into a tree [sim:policy]", {}),
    ("apixo", "wan-2-5-video-t2v",
     "Macro shot of a honeybee landing on lavender, shallow depth of field",
     {"resolution": "480p"}),
    ("venice", "ltx-2-fast-text-to-video",
     "A cat knocks a glass off a table in slow motion, studio lighting",
     {"resolution": "720p", "duration": "6s"}),
    ("acedata", "wan2.6-t2v",
     "Waves crash against a lighthouse in a storm, drone orbit shot [sim:cut]", {}),
]


def demo_requests(count: int) -> list[JobRequest]:
    """`count` varied requests; the fourth expires (try `r`), the fifth is refused."""
    from tui.jobs import JobRequest

    out = []
    for n in range(max(0, count)):
        provider, model, prompt, extra = DEMO_PROMPTS[n % len(DEMO_PROMPTS)]
        if n >= len(DEMO_PROMPTS):
            prompt = f"{prompt} (take {n // len(DEMO_PROMPTS) + 1})"
        extra = {"duration": "5s", **extra}
        out.append(JobRequest(model=model, prompt=prompt, provider=provider, **extra))
    return out


async def submit_demo_jobs(facade: Facade, count: int) -> None:
    requests = demo_requests(count)
    for req in requests:
        await facade.validate(req)  # a demo that fails on its own typo teaches nothing
    quotes = [await facade.quote(req) for req in requests]
    await facade.submit(requests, quotes)


@contextmanager
def patched_env(values: dict[str, str]):
    """Set environment variables for the demo's config, and put the old ones back."""
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def demo_env(sim: Any, home: Path) -> dict[str, str]:
    return {
        "WAN_TUI_HOME": str(home),
        "VENICE_BASE_URL": sim.url("venice"), "VENICE_API_KEY": "sim-venice-key",
        "APIXO_BASE_URL": sim.url("apixo"), "APIXO_API_KEY": "sim-apixo-key",
        "ACEDATA_BASE_URL": sim.url("acedata"), "ACEDATA_API_TOKEN": "sim-acedata-token",
    }


def demo_policy(mean_s: float) -> PollPolicy:
    """Real jobs take minutes; the demo's take seconds, and the poll schedule shrinks along."""
    from tui.engine.schedule import PollPolicy

    factor = min(1.0, max(0.01, mean_s / 120.0))
    return PollPolicy().scaled(factor) if factor < 1.0 else PollPolicy()


def run_demo(args: Any) -> int:
    from tui.config import load_config
    from tui.sim.server import SimServer
    from tui.sim.state import SimConfig

    tmp = Path(tempfile.mkdtemp(prefix="wan-tui-demo-"))
    try:
        sim_config = SimConfig(mean_s=args.mean, video_seconds=2.0, data_dir=tmp / "sim")
        with SimServer.running(sim_config) as sim:
            home = tmp / "home"
            env = demo_env(sim, home)
            with patched_env(env):
                config = load_config(env)

            async def first_jobs(facade: Facade) -> None:
                await submit_demo_jobs(facade, args.jobs)

            return asyncio.run(dashboard(config, policy=demo_policy(args.mean),
                                         demo_folder=tmp, before=first_jobs))
    finally:
        videos = len(list((tmp / "home").rglob("*.mp4")))
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"wan-tui demo: deleted {tmp} (its history and {videos} videos); "
              "your own history was not touched")
