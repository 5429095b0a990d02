"""Calm notifications against the simulator: jobs done are counted together, failures
stay on the alert line (by reason) until looked at, failing polls show ⚠ on their row."""

from __future__ import annotations

from tests.test_app import dashboard, notices, req, settle, until
from tui.app.alerts import Alerts, reason_of
from tui.app.widgets.alert_line import AlertLine
from tui.jobs import Job, JobRequest, JobState
from tui.sim.state import Faults


def failed(job_id: int, state: JobState, error: str | None) -> Job:
    return Job(job_id, JobRequest(model="m", prompt="p", provider="venice"), state, 0.0, 0.0,
               error=error)


def test_failures_are_grouped_by_reason_until_seen():
    alerts = Alerts()
    alerts.add(failed(1, JobState.FAILED, "content_policy: refused by the provider"))
    alerts.add(failed(2, JobState.FAILED, "content_policy: refused again"))
    alerts.add(failed(3, JobState.EXPIRED, "the provider no longer has this video"))
    assert alerts.groups() == [("content policy", [1, 2]), ("expired", [3])]
    assert "3 not done: content policy ×2 · expired #3" in alerts.text().plain
    assert alerts.seen([2, 7]) and not alerts.seen([7])
    assert reason_of(failed(4, JobState.UNKNOWN, "timed out after sending")) == "unknown"
    alerts.seen([1, 3])
    assert alerts.text().plain == ""


async def test_a_batch_finishing_raises_one_toast_not_one_per_job(make_sim):
    sim = make_sim(seed=3, mean_s=0.4)
    async with dashboard(sim, [req(f"quick {i}") for i in range(8)]) as (app, pilot, facade):
        await settle(app, pilot, facade, range(1, 9))
        await until(pilot, lambda: sum(m.count("done") for m in notices(app)
                                       if m.startswith(("+", "#"))) > 0, 10, "done toast")
        await pilot.pause(5.5)  # past the grouping interval: every done job announced
        done_toasts = [m for m in notices(app) if " done" in m and m.startswith(("+", "#"))]
        counted = sum(int(m[1:].split()[0]) if m.startswith("+") else 1 for m in done_toasts)
        assert counted == 8 and len(done_toasts) < 8, done_toasts


async def test_failures_stay_on_the_alert_line_until_looked_at(make_sim):
    sim = make_sim(seed=3, mean_s=0.3)
    requests = [req("fine"), req("refused [sim:policy]"), req("refused too [sim:policy]"),
                req("gone [sim:expire]")]
    async with dashboard(sim, requests) as (app, pilot, facade):
        await settle(app, pilot, facade, [1, 2, 3, 4],
                     wanted=(JobState.DONE, JobState.FAILED, JobState.EXPIRED), timeout=30)
        line = app.query_one(AlertLine)
        # #4 (expired) is the top row, under the cursor: looked at as it ended.
        await until(pilot, lambda: set(app.alerts.unseen) == {2, 3}, 10, "two on the line")
        assert line.display and "content policy ×2" in line.alerts.text().plain
        assert not notices(app, "error")  # no red toast per failed job
        await pilot.press("j")  # the cursor rests on #3: looked at
        await until(pilot, lambda: set(app.alerts.unseen) == {2}, 5, "seen by the cursor")
        assert "content policy #2" in line.alerts.text().plain
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: not app.alerts.unseen and not line.display, 5, "cleared")
        await until(pilot, lambda: sorted(app.table.order) == [2, 3, 4], 5, "only failures")


async def test_a_row_whose_polls_fail_shows_the_reason(make_sim):
    sim = make_sim(Faults(failure_block_threshold=0), seed=13, mean_s=3.0)
    async with dashboard(sim, [req("polled through an outage")]) as (app, pilot, facade):
        await until(pilot, lambda: (app.table.jobs.get(1) and app.table.jobs[1].state
                                    in (JobState.QUEUED, JobState.PROCESSING)), 10, "queued")
        sim.state.faults.rate_500 = 1.0
        await until(pilot, lambda: 1 in app.table.trouble, 15, "⚠ on the row")
        cell = app.table.get_cell("1", "progress").plain
        assert cell.startswith("⚠ ") and "×" in cell and "Internal server" in cell, cell
        sim.state.faults.rate_500 = 0.0
        await until(pilot, lambda: 1 not in app.table.trouble, 30, "⚠ gone once polls work")
        assert not app.table.get_cell("1", "progress").plain.startswith("⚠")


async def test_a_window_announces_what_the_engine_process_settled(make_sim, tmp_path, monkeypatch):
    """The engine is another process: its jobs' ends reach the window as commits, not as
    events, and are announced the same way (done counted, failures kept, the end rung)."""
    import asyncio
    import json

    from conftest import T2V, sim_env

    from tests.test_windows import _until, run_cli
    from tui.app.app import WanApp
    from tui.app.facade import Facade
    from tui.config import load_config
    from tui.session import open_session

    sim = make_sim(mean_s=3.0, seed=5)
    home = tmp_path / "home"
    env = sim_env(sim, home)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    batch = tmp_path / "b.jsonl"
    batch.write_text("".join(json.dumps({"model": T2V, "prompt": prompt, "duration": "5s"})
                             + "\n" for prompt in ("a flag [sim:fail]", "a fox", "a boat")))
    async with open_session(load_config(env), lock=False) as session:
        facade = Facade(session)
        app = WanApp(facade)
        async with app.run_test(size=(160, 45)) as pilot:
            await _until(pilot, lambda: app.table.loaded.is_set(), 10, "first window")
            code, _, err = await asyncio.to_thread(run_cli, env, "batch", str(batch), "--yes")
            assert code == 0, err
            await _until(pilot, lambda: any(m == "all jobs settled: 2 done, 1 not done"
                                            for _, m in app.notices), 60, "the end announced")
            assert not facade.is_engine  # all of it came from the engine process's commits
            done = [m for _, m in app.notices if " done" in m and "settled" not in m]
            assert done and len(done) <= 2  # counted together, never once per poll
            # The failure waits on the alert line (job 1: the cursor rests on the newest).
            assert list(app.alerts.unseen) == [1]
            assert "1 not done" in str(app.query_one(AlertLine).render())
