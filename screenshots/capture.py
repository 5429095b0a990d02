"""Drive the dashboard against the simulator and save its screenshots next to this file.

    python screenshots/capture.py

Writes SVGs (what Textual renders) and, when `cairosvg` is installed (the test extra; it needs
the system cairo library), PNGs of the same, drawn by png.py with every character on its
terminal column. The PNGs need DejaVu Sans Mono (Debian: fonts-dejavu-core), which has every
glyph the app draws. No key and no network: the simulator runs in-process.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from tui.app.app import WanApp  # noqa: E402
from tui.app.facade import Facade  # noqa: E402
from tui.app.launch import demo_env, patched_env  # noqa: E402
from tui.config import load_config  # noqa: E402
from tui.jobs import JobRequest  # noqa: E402
from tui.session import open_session  # noqa: E402
from tui.sim.server import SimServer  # noqa: E402
from tui.sim.state import SimConfig  # noqa: E402

sys.path.insert(0, str(HERE))
import png  # noqa: E402  (screenshots/png.py: SVG to PNG, cell by cell)

SIZE = (160, 45)
QUICK = 1.5  # seconds: these have finished when the pictures are taken
# (provider, model, prompt, extra fields, simulated run time in seconds)
JOBS = [
    ("venice", "wan-2.5-preview-text-to-video",
     "A red fox trots through fresh snow at dawn, breath steaming, low tracking shot",
     {"resolution": "720p", "aspect_ratio": "16:9"}, QUICK),
    ("apixo", "wan-2-5-video-t2v", "A paper boat sails down a gutter stream after a storm",
     {"resolution": "480p"}, QUICK),
    ("venice", "kling-2.6-pro-text-to-video",
     "An astronaut plants a flag that turns into a tree [sim:policy]", {}, QUICK),
    ("venice", "wan-2-7-text-to-video",
     "Time-lapse of clouds rolling over a mountain ridge [sim:expire]",
     {"resolution": "1080p"}, QUICK),
    ("apixo", "wan-2-5-t2v", "Rain on a neon-lit Tokyo crossing at night, slow dolly in",
     {"resolution": "720p"}, 40.0),
    ("venice", "veo3.1-fast-text-to-video",
     "A hot-air balloon drifts over terraced rice fields at sunrise",
     {"duration": "8s", "resolution": "1080p"}, 40.0),
    ("venice", "ltx-2-fast-text-to-video",
     "A cat knocks a glass off a table in slow motion, studio lighting",
     {"duration": "6s", "resolution": "720p"}, 20.0),
    ("venice", "seedance-1-5-pro-video",
     "Macro shot of a honeybee landing on lavender, shallow depth of field",
     {"resolution": "720p"}, 60.0),
    ("acedata", "wan2.6-t2v", "Waves crash against a lighthouse in a storm, drone orbit",
     {}, 45.0),
]


def requests() -> list[JobRequest]:
    out = []
    for provider, model, prompt, extra, _ in JOBS:
        extra = {"duration": "5s", **extra}
        out.append(JobRequest(model=model, prompt=prompt, provider=provider, **extra))
    return out


def model_means() -> dict[str, float]:
    # The simulator times runs per model (APIXO's by its wire model, without -t2v), so each
    # model here is used for one speed only.
    return {model.removesuffix("-t2v") if provider == "apixo" else model: run_s
            for provider, model, _, _, run_s in JOBS}


def to_png(svg: Path) -> None:
    try:
        import cairosvg  # noqa: F401
    except ImportError:
        return  # SVG only: pip install cairosvg (needs libcairo) for PNGs
    png.to_png(svg)  # every character on its own cell (cairo ignores the runs' textLength)


async def wait_for(pilot, check, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.1)):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await pilot.pause(0.1)
    raise SystemExit("capture: the app did not reach the expected state")


async def save(app: WanApp, name: str) -> None:
    svg = Path(app.save_screenshot(f"{name}.svg", str(HERE)))
    to_png(svg)


async def capture(facade: Facade) -> None:
    reqs = requests()
    for req in reqs:
        await facade.validate(req)
    quotes = [await facade.quote(req) for req in reqs]
    await facade.submit(reqs, quotes)
    app = WanApp(facade)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        quick = [n + 1 for n, job in enumerate(JOBS) if job[4] == QUICK]

        async def quick_ones_settled() -> bool:
            jobs = [await facade.get(i) for i in quick]
            return all(job.state.final for job in jobs)

        await wait_for(pilot, quick_ones_settled)
        await pilot.pause(3.0)  # the toasts fade; the slow jobs show progress
        await pilot.press("j", "j", "j")  # onto a Venice job with a server estimate
        await pilot.pause(1.0)
        await save(app, "dashboard")

        await pilot.press("G", "enter")  # the first job: done, with its file
        await pilot.pause(1.0)
        await save(app, "detail")
        await pilot.press("escape")

        await pilot.press("question_mark")
        await pilot.pause(0.5)
        await save(app, "help")
        await pilot.press("escape")

        expired = next(n + 1 for n, job in enumerate(JOBS) if "[sim:expire]" in job[2])
        table.move_cursor(row=table.order.index(expired))
        await pilot.press("r")  # re-queue after a 404: the price is in the question
        await pilot.pause(1.0)
        await save(app, "requeue")
        await pilot.press("n")

        await pilot.press("v")  # the gallery of finished jobs
        await pilot.pause(2.0)
        await save(app, "gallery")
        await pilot.press("escape")

        await capture_submit(app, pilot)
    await capture_small(facade)


async def capture_submit(app: WanApp, pilot) -> None:
    """The submission modal as a new job is written: a model chosen, a prompt typed,
    the price quoted before anything is spent."""
    from textual.widgets import TextArea

    from tui.app.screens.submit import SubmitScreen

    app.push_screen(SubmitScreen(app.facade))
    await wait_for(pilot, lambda: isinstance(app.screen, SubmitScreen) and app.screen.form.models)
    app.screen.query_one("#model-search").focus()
    await pilot.press(*"wan-2.5-preview-text", "enter")  # the model: its fields appear
    await pilot.pause(1.0)
    app.screen.query_one("#prompt", TextArea).text = (
        "A lighthouse keeper climbs the spiral stairs at dusk, lantern swinging, "
        "storm clouds gathering over the sea")
    await pilot.pause(3.0)  # checked and priced (debounced) before the picture
    await save(app, "submit")
    await pilot.press("escape")
    await pilot.pause(0.5)
    await pilot.press("y")  # discard the typed prompt


async def capture_small(facade: Facade) -> None:
    """The same history at 80x24: columns dropped by priority, `?` and `q` kept."""
    app = WanApp(facade)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.table.loaded.is_set())
        await pilot.pause(1.5)
        await save(app, "small-terminal")


async def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="wan-tui-capture-"))
    try:
        config = SimConfig(mean_s=30.0, spread=0.05, model_means=model_means(), seed=4,
                           video_seconds=2.0, data_dir=tmp / "sim")
        with SimServer.running(config) as sim:
            keys = sim.state.config.api_keys
            apis = {name: (sim.url(name), keys.get(name, "")) for name in keys}
            env = demo_env(apis, tmp / "home", 30.0)
            with patched_env(env):
                cfg = load_config(env)
                # The session holds the lock: its engine runs here, in this process, so the
                # pictures need no engine process (the product's windows are its clients).
                async with open_session(cfg) as session:
                    await capture(Facade(session))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
