"""Small defects from the long-batch review, each pinned."""

from __future__ import annotations

from rich.color import ColorSystem
from rich.style import Style

from tests.test_snapshots import config  # noqa: F401  (config: fixture)
from tui import format as fmt
from tui.app.facade import numbered_lines
from tui.app.widgets.detail import file_text
from tui.app.widgets.rows import STATE_STYLE
from tui.jobs import Job, JobRequest, JobState

NOW = 1_750_000_000.0


def job(state: JobState, **fields) -> Job:
    return Job(1, JobRequest(model="m", prompt="p", provider="venice"), state,
               NOW - 100, fields.pop("updated_at", NOW - 94), **fields)


def test_a_cancelled_job_keeps_the_time_it_ran():
    cancelled = job(JobState.CANCELLED, submitted_at=NOW - 100)  # cancelled 6 s in
    assert fmt.duration(fmt.elapsed_of(cancelled, NOW)) == "6s"


def test_queued_without_an_estimate_does_not_say_running():
    queued = job(JobState.QUEUED, submitted_at=NOW - 7)
    assert fmt.progress_text(queued, NOW) == "queued 7s"


def test_failed_jobs_do_not_promise_a_local_copy():
    assert file_text(job(JobState.FAILED)).plain == "none: the job failed"
    assert file_text(job(JobState.CANCELLED)).plain == "none: the job was cancelled"
    assert file_text(job(JobState.PROCESSING)).plain == "no local copy yet"


def test_every_state_has_its_own_colour_on_a_16_colour_terminal():
    colours = {state: Style.parse(style).color.downgrade(ColorSystem.STANDARD).number
               for state, style in STATE_STYLE.items()}
    assert len(set(colours.values())) == len(colours), colours


def test_batch_lines_are_read_one_by_one(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text('# comment\n{"model": "m", "prompt": "a"}\n\n{"model": oops}\n')
    assert [n for n, _ in numbered_lines(path)] == [2, 4]


async def test_bulk_requeue_says_what_it_skipped(config):  # noqa: F811
    from tests.test_snapshots import ready, seeded_app

    app = seeded_app(config)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        await pilot.press("number_sign", "7", "enter")  # processing: not re-queueable
        await pilot.pause(0.3)
        await pilot.press("space", "space", "r")  # marks #7 and #6
        for _ in range(40):
            if any("skipped" in m for _, m in app.notices):
                break
            await pilot.pause(0.05)
        said = [m for _, m in app.notices if "skipped" in m]
        assert said == ["skipped #6 (processing), #7 (processing): only failed, expired, "
                        "cancelled or unknown jobs are re-queued"]
