"""Like this, and variations: new seeds where the provider takes one, priced before
anything is sent, one batch of their own linked to the jobs they came from."""

from __future__ import annotations

import json
import random

import pytest
from conftest import T2V
from test_cli import charged, cli, one_line, write_batch  # noqa: F401 (cli: a fixture)

from tui.jobs import Job, JobRequest, JobState, ValidationError
from tui.query import JobQuery
from tui.variations import MAX_COUNT, describe, variations

APIXO = {"provider": "apixo", "model": "wan-2-5", "prompt": "paper boat in the rain",
         "duration": 5, "resolution": "720p", "seed": 42}
VENICE = {"model": T2V, "prompt": "a heron on a misty pond", "duration": "5s"}


@pytest.fixture
def run(cli):  # noqa: F811 (test_cli's fixture, under a name that does not shadow it)
    return cli


def job(id_: int, **request) -> Job:
    return Job(id_, JobRequest(**request), JobState.DONE, 1.0, 1.0)


def test_seeds_change_only_where_the_provider_takes_one():
    venice = job(1, model=T2V, prompt="p")
    apixo = job(2, model="wan-2-5-t2v", provider="apixo", prompt="p", seed=42)
    planned = variations([venice, apixo], 3, lambda p: p != "venice", random.Random(1))
    assert [v.source.id for v in planned] == [1, 1, 1, 2, 2, 2]
    assert all(v.request == venice.request and not v.seed_changed for v in planned[:3])
    seeds = [v.request.seed for v in planned[3:]]
    assert len(set(seeds)) == 3 and 42 not in seeds and all(0 <= s < 2**31 for s in seeds)
    assert all(v.request.prompt == "p" and v.request.model == "wan-2-5-t2v"
               for v in planned[3:])
    assert describe(planned) == ("3 variations of #1 (same request again) and 3 of #2 "
                                 "(new seeds)")


@pytest.mark.parametrize("count", [0, MAX_COUNT + 1])
def test_a_count_out_of_range_is_refused(count):
    with pytest.raises(ValidationError, match=f"count: {count} variations; give 1 to"):
        variations([job(1, model=T2V, prompt="p")], count, lambda p: True)


def test_from_filters_by_the_source_job():
    q = JobQuery.parse("from:12 fox")
    assert q.source == 12 and q.text == "fox" and not q.empty
    assert q.admits(job(13, model=T2V, prompt="p").with_(source_id=12))
    assert not q.admits(job(14, model=T2V, prompt="p").with_(source_id=11))
    with pytest.raises(ValidationError, match="from:x: name a job by its number"):
        JobQuery.parse("from:x")


def test_vary_a_venice_and_an_apixo_job_priced_before_sending(run, tmp_path):
    batch = write_batch(tmp_path / "b.jsonl", [VENICE, APIXO])
    code, out, err = run("batch", str(batch), "--yes", "--follow", "--progress-every", "0.5")
    assert code == 0, err
    assert charged(run.sim) == 2
    # Priced first: over the cap nothing is sent.
    code, out, err = run("vary", "1", "2", "--count", "2", "--yes", "--max-cost", "0.50")
    # Venice 5 s with audio: $0.3125 each; APIXO 720p 5 s at $0.08/s: ~$0.40 each
    assert "2 variations of #1 (same request again) and 2 of #2 (new seeds): 4 jobs, " \
           "total ~$1.42 (some prices are estimates)" in out
    assert out.count("from #2: apixo/wan-2-5-t2v 5s seed ") == 2
    assert code == 2 and "above --max-cost $0.50; nothing submitted" in one_line(err)
    assert charged(run.sim) == 2
    code, out, err = run("vary", "1", "2", "--count", "2", "--yes", "--progress-every", "0.5")
    assert code == 0, err
    assert "recorded as jobs #3-#6 (batch:3" in out
    assert charged(run.sim) == 6
    code, out, _ = run("list", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    new = [rows[i] for i in (3, 4, 5, 6)]
    assert [r["source_id"] for r in new] == [1, 1, 2, 2]
    assert {r["batch_id"] for r in new} == {3} and rows[1]["batch_id"] == 1
    assert all(r["state"] == "done" for r in new)
    # Venice: the same request again (its queue body has no seed)
    assert [r["request"] for r in new[:2]] == [rows[1]["request"]] * 2
    # APIXO: a new seed each, sent on the wire; everything else as the source
    seeds = [r["request"]["seed"] for r in new[2:]]
    assert len(set(seeds)) == 2 and 42 not in seeds
    for row in new[2:]:
        assert {k: v for k, v in row["request"].items() if k != "seed"} == {
            k: v for k, v in rows[2]["request"].items() if k != "seed"}
        sent = run.sim.state.job(row["remote_id"]).body
        assert sent["input"]["seed"] == row["request"]["seed"]
    code, out, _ = run("list", "--json", "--from", "2")
    assert sorted(r["id"] for r in json.loads(out)) == [5, 6]


def test_vary_refuses_unknown_jobs_and_bad_counts_without_spending(run):
    code, _, err = run("vary", "9", "--yes")
    assert code == 2 and "no job 9" in one_line(err)
    code, _, err = run("vary", "1", "--count", "0", "--yes")
    assert code == 2
    assert charged(run.sim) == 0


async def test_dashboard_like_this_and_variations_keys(sim):
    from test_app import dashboard, on_screen, req, settle, until

    from tui.app.screens.help import HelpScreen
    from tui.app.screens.result import SubmitResult
    from tui.app.screens.submit import SubmitScreen
    from tui.app.screens.vary import VaryScreen

    async with dashboard(sim, [req("a heron on a misty pond")]) as (app, pilot, facade):
        await settle(app, pilot, facade, [1])
        # `l`: the form, filled in from the job; what it returns is linked to the job
        await pilot.press("l")
        await until(pilot, lambda: on_screen(app, SubmitScreen), 5, "form")
        assert app.screen.initial == (await facade.get(1)).request
        like = req("a heron on a misty pond, at dusk")
        app.screen.dismiss(SubmitResult([like], [await facade.quote(like)]))
        await until(pilot, lambda: facade.get(2), 5, "like-this recorded")
        assert (await facade.get(2)).source_id == 1
        await settle(app, pilot, facade, [2])
        # `V` on job 1: the count, the total; ctrl+s submits what was shown
        await until(pilot, lambda: app.table.current_id is not None, 5, "a row")
        await pilot.press("G")
        await until(pilot, lambda: app.table.current_id == 1, 5, "job 1")
        sent_before = charged(sim)
        await pilot.press("V")
        await until(pilot, lambda: on_screen(app, VaryScreen), 5, "vary form")
        form = app.screen
        await until(pilot, lambda: form.priced is not None, 10, "priced")
        assert form.priced[0] == 3
        await pilot.press("backspace", "2")
        await until(pilot, lambda: form.priced is not None and form.priced[0] == 2, 10,
                    "re-priced")
        total = str(form.query_one("#vary-total").render())
        assert total == "2 variations of #1 (same request again): 2 new jobs, total $0.62"
        assert "Submit 2 for $0.62" in str(form.query_one("#vary-yes").label)
        assert charged(sim) == sent_before  # nothing sent while the form is open
        await pilot.press("ctrl+s")
        await until(pilot, lambda: facade.get(4), 5, "variations recorded")
        new = [await facade.get(3), await facade.get(4)]
        assert [j.source_id for j in new] == [1, 1] and {j.batch_id for j in new} == {3}
        source = await facade.get(1)
        assert all(j.request == source.request for j in new)
        await settle(app, pilot, facade, [3, 4])
        # the detail pane names the source; from:1 shows every job made from #1
        app.set_filter("from:1")
        await until(pilot, lambda: sorted(app.table.order) == [2, 3, 4], 5, "from:1")
        await until(pilot, lambda: app.detail.job is not None and app.detail.job.id in (2, 3, 4),
                    5, "detail")
        assert "made from    #1   filter from:1 shows every job made from it" in app.detail.plain()
        # both keys are in ? and the palette
        await pilot.press("question_mark")
        await until(pilot, lambda: on_screen(app, HelpScreen), 5, "help")
        rows = {binding_id: keys for keys, _, binding_id in app.screen.rows}
        assert rows["like_this"] == "l" and rows["vary"] == "V"
        await pilot.press("escape")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert any(t.startswith("New job like this one") for t in titles)
        assert any(t.startswith("Variations of the selected") for t in titles)
