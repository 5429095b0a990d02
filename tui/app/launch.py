"""Starting the dashboard: on the user's history, or on a throwaway demo with the simulator.

The window is a client: it reads the history and hands actions to the engine process
(`wan-tui engine run`), which it starts when there is work and none runs. Nothing here
follows a job, so quitting needs no question and a closed terminal loses nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.app.facade import Facade
    from tui.config import Config
    from tui.jobs import JobRequest


def run_dashboard(config: Config) -> int:
    return asyncio.run(dashboard(config))


async def dashboard(config: Config, *, before: Any = None, demo_folder: Path | None = None,
                    stop_engine: bool = False) -> int:
    """Open the session (as a client) and run the app; after it, one line says what the
    engine still follows.

    `before(facade)` runs once the session is open, before the window (the demo records
    its first jobs there). With `stop_engine` (the demo), the engine is asked to stop once
    the window closes.
    """
    from tui.app.app import WanApp
    from tui.app.facade import Facade
    from tui.engine.signals import StopSignals
    from tui.session import open_session
    from tui.termcaps import pictures

    # Ask the terminal what it draws now: once the app runs, its input thread takes answers.
    pictures(config.images)

    async with open_session(config, lock=False) as session:
        facade = Facade(session)
        if before is not None:
            await before(facade)
        app = WanApp(facade)
        app.demo_folder = demo_folder
        # A closed terminal (SIGHUP) or SIGTERM ends the window; the engine, another
        # process, goes on with the jobs.
        signals = StopSignals(on_hangup=lambda: app.exit(0),
                              on_stop=lambda _name: app.exit(0))
        with signals:
            await app.run_async()
            await facade.close()
            if stop_engine:
                await session.host.stop_engine()
            elif not signals.hung_up:
                print(await facade.quit_line())
        return app.return_code or 0


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


def demo_env(apis: dict[str, tuple[str, str]], home: Path, mean_s: float) -> dict[str, str]:
    """The demo's configuration, as environment variables: its own engine process reads
    them too."""
    env = {"WAN_TUI_HOME": str(home), "WAN_TUI_TIME_SCALE": f"{demo_time_scale(mean_s):g}"}
    names = {"venice": ("VENICE_BASE_URL", "VENICE_API_KEY"),
             "apixo": ("APIXO_BASE_URL", "APIXO_API_KEY"),
             "acedata": ("ACEDATA_BASE_URL", "ACEDATA_API_TOKEN")}
    for provider, (url, key) in apis.items():
        if provider in names:
            env[names[provider][0]], env[names[provider][1]] = url, key
    return env


def demo_time_scale(mean_s: float) -> float:
    """Real jobs take minutes; the demo's take seconds, and the poll schedule shrinks along
    (WAN_TUI_TIME_SCALE, read by the engine process: tui/session.py)."""
    return min(1.0, max(0.01, mean_s / 120.0))


@contextmanager
def simulator_process(folder: Path, mean_s: float):
    """`wan-tui sim` in a background process of its own session, on a free port; yields
    ({provider: (base url, key)} read from its banner, its pid), and stops it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "sim", "--port", "0", "--mean", f"{mean_s:g}",
         "--video-seconds", "2", "--data-dir", str(folder)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, start_new_session=True)
    try:
        apis: dict[str, tuple[str, str]] = {}
        assert proc.stdout is not None
        for line in proc.stdout:  # the banner, then "simulator running"
            words = line.split()
            if line.startswith("simulator running"):
                break
            if len(words) == 4 and words[2] == "key:":
                apis[words[0]] = (words[1], words[3])
        if not apis:
            from tui.errors import Failure

            raise Failure("the demo's simulator did not start; `wan-tui sim` says why")
        proc.stdout.close()
        yield apis, proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def reaper_process(folder: Path, simulator_pid: int):
    """A watcher in a session of its own, started with the demo's environment: should this
    window die without cleaning up (SIGKILL, a crash), it stops the demo's engine and
    simulator and deletes the folder, so nothing of a demo outlives it. A window that
    cleans up itself ends the watcher first."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.app.launch", "reap", str(os.getpid()), str(folder),
         str(simulator_pid)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait()


def reap(window_pid: int, folder: Path, simulator_pid: int) -> None:
    """The watcher's work: wait for the window to go (this process is its child, so the
    parent pid changes then), then stop what the demo left running and delete its folder."""
    while os.getppid() == window_pid:
        time.sleep(0.5)
    from tui.config import load_config
    from tui.enginecli import engine_stop

    with suppress(Exception):  # nobody to tell: the simulator and the folder go anyway
        asyncio.run(engine_stop(load_config(dict(os.environ))))
    with suppress(ProcessLookupError):
        os.kill(simulator_pid, signal.SIGTERM)
    shutil.rmtree(folder, ignore_errors=True)


def run_demo(args: Any) -> int:
    """The simulator and the engine in background processes, the window their client;
    quitting stops both and deletes the folder (a watcher does it if the window is killed)."""
    from tui.config import load_config

    tmp = Path(tempfile.mkdtemp(prefix="wan-tui-demo-"))
    try:
        with simulator_process(tmp / "sim", args.mean) as (apis, simulator_pid):
            env = demo_env(apis, tmp / "home", args.mean)
            # Set for the whole run: the engine process this window starts inherits it.
            with patched_env(env), reaper_process(tmp, simulator_pid):
                config = load_config(env)

                async def first_jobs(facade: Facade) -> None:
                    await submit_demo_jobs(facade, args.jobs)

                return asyncio.run(dashboard(config, demo_folder=tmp, before=first_jobs,
                                             stop_engine=True))
    finally:
        videos = len(list((tmp / "home").rglob("*.mp4")))
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"wan-tui demo: deleted {tmp} (its history and {videos} videos); "
              "your own history was not touched")


if __name__ == "__main__" and sys.argv[1:2] == ["reap"]:
    reap(int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
