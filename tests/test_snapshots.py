"""SVG snapshots of the main screens with fixed content: a seeded history (fixed timestamps),
a frozen clock, no engine, UTC, and a relative output folder so no temp path shows.

Update after an intended change with `pytest tests/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tui.app.app import WanApp
from tui.app.facade import Facade
from tui.config import load_config
from tui.jobs import Job, JobRequest, JobState
from tui.session import open_session

NOW = 1_750_000_000.0  # the frozen clock: every elapsed time and ETA is measured from here
SIZE = (160, 45)
FILE = "videos/20250615_wan-2.5-preview_a-red-fox_1.mp4"


def job(state: JobState, prompt: str, *, age: float, provider: str = "venice",
        model: str = "wan-2.5-preview-text-to-video", **fields) -> Job:
    req = JobRequest(model=model, prompt=prompt, provider=provider, duration="5s",
                     resolution=fields.pop("resolution", "720p"))
    created = NOW - age
    fields.setdefault("quote_usd", 0.25)
    if state not in (JobState.PENDING,):
        fields.setdefault("submitted_at", created + 1)
        fields.setdefault("remote_id", f"q-{int(age):06d}")
        fields.setdefault("cost_usd", fields["quote_usd"])
    return Job(0, req, state, created, created + 2, **fields)


def history() -> list[Job]:
    """Oldest first (the store numbers them in this order): two batches, #1 (jobs 1-5,
    over) and #6 (jobs 6-9, running)."""
    jobs = [
        job(JobState.DONE, "A red fox trots through fresh snow at dawn, low tracking shot",
            age=3600, file=FILE, bytes=4_812_345, finished_at=NOW - 3480, ready_at=NOW - 3490,
            started_at=NOW - 3580, sha256="ab" * 32),
        job(JobState.FAILED, "An astronaut plants a flag that turns into a tree", age=3000,
            model="kling-2.6-pro-text-to-video", resolution="1080p", cost_usd=0.0,
            error="content_policy: the prompt was refused by the provider's content policy",
            finished_at=NOW - 2950),
        job(JobState.EXPIRED, "Time-lapse of clouds rolling over a ridge at golden hour",
            age=2400, model="wan-2-7-text-to-video", resolution="1080p",
            error="the provider no longer has this video (expired or deleted)",
            finished_at=NOW - 2300),
        job(JobState.UNKNOWN, "Waves crash against a lighthouse in a storm", age=1800,
            provider="acedata", model="wan2.6-t2v", remote_id=None,
            error="timed out after sending: it may have been charged"),
        job(JobState.CANCELLED, "A paper boat sails down a gutter stream", age=1200,
            provider="apixo", model="wan-2-5-t2v"),
        job(JobState.PROCESSING, "Rain on a neon-lit Tokyo crossing at night, slow dolly in",
            age=90, estimate_s=60.0, provider="apixo", model="wan-2-5-t2v"),
        job(JobState.PROCESSING, "Macro shot of a honeybee landing on lavender", age=43,
            estimate_s=100.0, started_at=NOW - 30),
        job(JobState.QUEUED, "A cat knocks a glass off a table in slow motion", age=12,
            estimate_s=120.0, provider="acedata", model="wan2.6-t2v"),
        job(JobState.PENDING, "A lighthouse keeper waves at a passing whale", age=2),
    ]
    return [j.with_(batch_id=1 if n < 5 else 6) for n, j in enumerate(jobs)]


def seeded_app(config, clock: float = NOW, cls: type[WanApp] = WanApp) -> WanApp:
    @asynccontextmanager
    async def opener():
        async with open_session(config, lock=False) as session:
            await session.store.bulk_insert_for_benchmark(history())
            yield Facade(session)

    return cls(opener=opener, start_engine=False, clock=lambda: clock)


@pytest.fixture
def config(monkeypatch, tmp_path):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.chdir(tmp_path)  # FILE is relative: it exists, and no temp path shows
    Path(FILE).parent.mkdir()
    Path(FILE).write_bytes(b"\0" * 1024)
    env = {"VENICE_API_KEY": "k", "APIXO_API_KEY": "k",
           "VENICE_BASE_URL": "http://127.0.0.1:9/venice", "APIXO_BASE_URL": "http://127.0.0.1:9/a"}
    yield load_config(env)  # AceData without a key: the status line names it
    monkeypatch.delenv("TZ")
    time.tzset()


async def ready(pilot) -> None:
    """Wait for the first window, the status line and the (debounced) detail pane."""
    app = pilot.app
    for _ in range(100):
        await pilot.pause(0.05)
        status = str(app.query_one("#status-line").render())
        if app.table.order and app.detail.job is not None and "batch #" in status:
            return
    raise AssertionError("the dashboard did not settle")


def test_dashboard_mid_batch(snap_compare, config):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("j", "j")  # onto the processing job with an estimate
        await ready(pilot)
        await pilot.pause(0.3)

    assert snap_compare(seeded_app(config), terminal_size=SIZE, run_before=run_before)


def test_small_terminal_mid_batch(snap_compare, config):
    """80x24: #, state, prompt and progress on every row; the batch on the status line;
    ? and q on the footer."""
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("j")
        await ready(pilot)
        await pilot.pause(0.3)

    assert snap_compare(seeded_app(config), terminal_size=(80, 24), run_before=run_before)


def test_batch_summary(snap_compare, config):
    """B: every batch with its progress, failures, ETA and money."""
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("B")
        await pilot.pause(0.5)

    assert snap_compare(seeded_app(config), terminal_size=SIZE, run_before=run_before)


def test_finished_job_detail(snap_compare, config):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("G", "enter")  # the oldest job: done, with its file
        await pilot.pause(0.3)
        assert pilot.app.detail.job.state == JobState.DONE

    assert snap_compare(seeded_app(config), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare, config):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("question_mark")

    assert snap_compare(seeded_app(config), terminal_size=SIZE, run_before=run_before)


def test_filter_and_delete_confirmation(snap_compare, config):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("slash", *"fox", "enter")
        await pilot.pause(0.4)
        await pilot.press("d")
        await pilot.pause(0.3)

    assert snap_compare(seeded_app(config), terminal_size=SIZE, run_before=run_before)


def test_finished_job_with_its_picture(snap_compare, config):
    """The detail pane of a finished job whose file is a real clip: its facts and a picture
    from its middle (half-blocks: the test has no terminal to ask for kitty or sixel)."""
    from dataclasses import replace

    from tui.jobs import VideoFacts
    from tui.sim.video import render_clip

    render_clip(Path(FILE), prompt="A red fox trots through fresh snow", job_id="snapshot",
                seconds=1.0, fps=8)
    facts = VideoFacts(width=320, height=180, duration_s=1.0, fps=8.0, video_codec="h264",
                       bitrate=1_650_000)

    @asynccontextmanager
    async def opener():
        async with open_session(config, lock=False) as session:
            jobs = history()
            jobs[0] = replace(jobs[0], video=facts)
            await session.store.bulk_insert_for_benchmark(jobs)
            yield Facade(session)

    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("G", "enter")
        detail = pilot.app.detail
        picture = detail.query_one("#detail-picture")
        for _ in range(200):  # the picture is decoded in a thread, then laid out
            await pilot.pause(0.05)
            if detail.picture_of == 1 and picture.region.height > 5:
                break
        assert detail.picture_of == 1 and picture.region.height > 5
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.3)

    app = WanApp(opener=opener, start_engine=False, clock=lambda: NOW)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
