"""Batches: jobs recorded together, counted by the store, summed up on the status line,
listed by `B` and used as a filter; `?` explains every figure of the status line."""

from __future__ import annotations

from conftest import T2V

from tests.test_app import dashboard, on_screen, req, until
from tui.app.batch_status import batch_eta, summarize
from tui.app.facade import JobQuery
from tui.app.screens.batches import BatchesScreen
from tui.app.screens.help import STATUS_FIGURES, HelpScreen
from tui.app.widgets.status import StatusLine
from tui.jobs import Job, JobRequest, JobState
from tui.providers.base import Quote
from tui.store import MIGRATIONS

NOW = 1_750_000_000.0


def running(job_id: int, state: JobState, *, age: float, estimate: float | None) -> Job:
    return Job(job_id, JobRequest(model=T2V, prompt="p", provider="venice"), state,
               NOW - age, NOW - age, submitted_at=None if state == JobState.PENDING
               else NOW - age, estimate_s=estimate)


async def test_jobs_recorded_together_are_one_batch_counted_by_the_store(store):
    first = await store.add_jobs([req("one"), req("two"), req("three")], [0.5, 0.5, 0.5])
    alone = await store.add_jobs([req("alone")], [1.0])
    assert {j.batch_id for j in first} == {first[0].id} and alone[0].batch_id == alone[0].id
    assert await store.current_batch() == alone[0].id  # newest with jobs running
    await store.transition(first[0].id, JobState.SUBMITTING, "sending")
    await store.transition(first[0].id, JobState.QUEUED, "accepted", remote_id="r1",
                       submitted_at=NOW, cost_usd=0.5)
    await store.transition(first[0].id, JobState.PROCESSING, "working")
    await store.transition(first[0].id, JobState.DOWNLOADING, "fetching")
    await store.transition(first[0].id, JobState.DONE, "saved", finished_at=NOW + 60)
    await store.transition(first[1].id, JobState.CANCELLED, "stopped")
    await store.transition(alone[0].id, JobState.CANCELLED, "stopped")
    assert await store.current_batch() == first[0].id  # the one still running
    stats = (await store.batches(batch=first[0].id))[0]
    assert stats.total == 3 and stats.counts[JobState.DONE] == 1
    assert stats.counts[JobState.CANCELLED] == 1 and stats.counts[JobState.PENDING] == 1
    # Committed: the done job's cost and the pending one's quote; the cancelled one was
    # never sent, so it commits nothing. Delivered: the done one.
    assert stats.committed_usd == 1.0 and stats.delivered_usd == 0.5
    assert stats.prompt == "one" and stats.last_finished_at == NOW + 60
    assert [b.batch_id for b in await store.batches()] == [alone[0].id, first[0].id]
    assert await store.count_jobs(JobQuery(batch=first[0].id)) == 3
    listed = await store.list_jobs(JobQuery(batch=alone[0].id))
    assert [j.prompt for j in listed] == ["alone"]
    # The schema version counts the batch migration.
    rows = await store._read("PRAGMA user_version")
    assert rows[0][0] == len(MIGRATIONS)


async def test_model_filter_matches_the_start_of_a_model_id(store):
    await store.add_jobs([req("a", model="wan-2.5-preview-text-to-video"),
                          req("b", model="kling-2.6-pro-text-to-video")], [0.1, 0.1])
    assert [j.prompt for j in await store.list_jobs(JobQuery(model="wan"))] == ["a"]
    assert await store.count_jobs(JobQuery(model="wan-2.5-preview-text-to-video")) == 1
    assert await store.count_jobs(JobQuery(model="wan*")) == 0  # GLOB's own wildcards are literal
    flt = JobQuery.parse("model:wan batch:7")
    assert flt.model == "wan" and flt.batch == 7
    assert flt.admits(running(7, JobState.QUEUED, age=1, estimate=None).with_(batch_id=7))


def test_batch_eta_runs_the_waiting_jobs_as_slots_free_up():
    jobs = [running(1, JobState.PROCESSING, age=30, estimate=100),  # 70 s left
            running(2, JobState.QUEUED, age=10, estimate=100),  # 90 s left
            running(3, JobState.PENDING, age=5, estimate=None),  # starts at 70, takes 100
            running(4, JobState.PENDING, age=5, estimate=None)]  # starts at 90, takes 100
    assert batch_eta(jobs, NOW) == 190
    assert batch_eta(jobs[:2], NOW) == 90
    # Nothing known about how long a job takes: no ETA rather than a made-up one.
    assert batch_eta([running(5, JobState.PROCESSING, age=5, estimate=None)], NOW) is None


async def test_status_line_shows_the_batch_and_b_lists_and_filters_batches(sim):
    async with dashboard(sim, [req(f"first {i}") for i in range(3)]) as (app, pilot, facade):
        await facade.submit([req("second a"), req("second b")], [Quote(0.25)] * 2)
        status = app.query_one(StatusLine)
        await until(pilot, lambda: "batch #4 " in str(status.render()), 10, "batch on status")
        await until(pilot, lambda: "5/5" in str(status.render())  # all done, throughput
                    or "/2 " in str(status.render()), 20, "batch counts")
        await pilot.press("B")
        await until(pilot, lambda: on_screen(app, BatchesScreen), 5, "batch list")
        screen = app.screen
        assert [b.batch_id for b in screen.batches] == [4, 1]
        # The list opens on the batch the status line follows: the newest with jobs running,
        # which is batch 1 when batch 4 ends first on a busy box. `end` picks the older batch
        # whichever it opened on (`down` from the last option wraps round to "all jobs").
        await pilot.press("end", "enter")
        await until(pilot, lambda: app.table.flt.batch == 1, 5, "filtered to batch 1")
        await until(pilot, lambda: sorted(app.table.order) == [1, 2, 3], 5, "its rows")
        assert app.filter_query() == "batch:1"
        await until(pilot, lambda: "batch #1 " in str(status.render()), 10, "status follows")
        await pilot.press("B", "a")
        await until(pilot, lambda: app.table.flt.batch is None, 5, "all jobs again")
        await until(pilot, lambda: len(app.table.order) == 5, 5, "every row")


async def test_help_explains_every_figure_of_the_status_line(sim):
    async with dashboard(sim, [req("one"), req("two")]) as (app, pilot, facade):
        await pilot.press("question_mark")
        await until(pilot, lambda: on_screen(app, HelpScreen), 5, "help")
        figures = dict(STATUS_FIGURES)
        assert "q31/40" in figures and "r32/120" in figures and "ETA 14m" in figures
        status = str(app.query_one(StatusLine).render())
        # Every kind of figure the status line is showing now has its line in `?`.
        for shown, figure in (("batch #", "batch #31"), ("ETA", "ETA 14m"),
                              ("today", "today $21.36"), (" q", "q31/40"), (" r", "r32/120")):
            if shown in status:
                assert figure in figures


def test_summary_counts_failed_and_cancelled_apart():
    from tui.store import BatchStats

    counts = dict.fromkeys(JobState, 0)
    counts.update({JobState.DONE: 3, JobState.FAILED: 1, JobState.UNKNOWN: 1,
                   JobState.CANCELLED: 2, JobState.PROCESSING: 1})
    stats = BatchStats(9, counts, 4.0, 1.5, NOW - 3600, NOW - 3600, NOW - 60, "p")
    summary = summarize(stats, [running(12, JobState.PROCESSING, age=10, estimate=40)], NOW)
    assert (summary.done, summary.failed, summary.cancelled, summary.active) == (3, 2, 2, 1)
    assert summary.eta_s == 30 and summary.per_hour == 3.0
