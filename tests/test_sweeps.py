"""Sweeps in batch files: a line's lists expand to their product, priced and capped before
anything is sent; a list outside `sweep` keeps its meaning."""

from __future__ import annotations

import json
import math

import pytest
from conftest import T2V
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cli import charged, cli, one_line, write_batch  # noqa: F401 (cli: a fixture)

from tui import batchfile
from tui.batchfile import BatchError, expand_line, parse_batch


@pytest.fixture
def run(cli):  # noqa: F811 (test_cli's fixture, under a name that does not shadow it)
    return cli


def sweep_line(**fields) -> str:
    return json.dumps({"model": T2V, "duration": "5s", **fields})


def test_lists_expand_to_their_product_in_the_order_written():
    lines = parse_batch(sweep_line(prompt="a {animal} in {place}", sweep={
        "animal": ["fox", "owl", "cat"], "resolution": ["720p", "1080p"],
        "place": ["snow"]}))
    assert len(lines) == 3 * 2 * 1
    got = [(b.request.prompt, b.request.resolution) for b in lines]
    assert got == [("a fox in snow", "720p"), ("a fox in snow", "1080p"),
                   ("a owl in snow", "720p"),
                   ("a owl in snow", "1080p"), ("a cat in snow", "720p"),
                   ("a cat in snow", "1080p")]
    assert {b.line for b in lines} == {1}
    assert lines[1].variant == "animal=fox resolution=1080p place=snow"


def test_a_field_both_set_and_named_in_the_prompt_and_an_option():
    (first, second) = parse_batch(sweep_line(
        prompt="shot at {duration}", sweep={"duration": [5, "10s"]}))
    assert (first.request.duration, first.request.prompt) == ("5s", "shot at 5")
    assert (second.request.duration, second.request.prompt) == ("10s", "shot at 10s")
    (multi, single) = parse_batch(sweep_line(prompt="p", sweep={"shot_type": ["multi",
                                                                              "single"]}))
    assert multi.request.options == {"shot_type": "multi"}
    assert single.request.options == {"shot_type": "single"}


def test_a_list_outside_sweep_is_still_one_value():
    urls = ["https://example.invalid/a.mp4", "https://example.invalid/b.mp4"]
    (only,) = parse_batch(sweep_line(prompt="p", reference_video_urls=urls))
    assert only.request.options == {"reference_video_urls": urls}
    # ... and a list option is swept as a list of lists
    lines = parse_batch(sweep_line(prompt="p", sweep={"reference_video_urls": [urls[:1],
                                                                               urls]}))
    assert [b.request.options["reference_video_urls"] for b in lines] == [urls[:1], urls]


def test_braces_that_are_no_variable_stay_as_written():
    (only,) = parse_batch(sweep_line(prompt="{not a var} {x}", sweep={"x": ["1"]}))
    assert only.request.prompt == "{not a var} 1"


def test_a_swept_prompt_gets_the_other_names_whatever_the_order():
    for sweep in ({"prompt": ["a {animal} runs", "a {animal} sleeps"], "animal": ["fox"]},
                  {"animal": ["fox"], "prompt": ["a {animal} runs", "a {animal} sleeps"]}):
        lines = parse_batch(sweep_line(prompt="{animal}", sweep=sweep))
        assert [b.request.prompt for b in lines] == ["a fox runs", "a fox sleeps"]
        assert all("animal" not in b.request.options for b in lines)


def test_a_swept_prompt_that_is_not_text_is_one_line():
    # found by the property test below: a null prompt swept beside a name the template
    # uses was filled as if it were text (a traceback)
    got = refused(sweep_line(prompt="a {animal}", sweep={"prompt": [None],
                                                         "animal": [None]}))
    assert got.startswith("line 1: prompt: missing")


def refused(text: str) -> str:
    with pytest.raises(BatchError) as info:
        parse_batch(text)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize(("sweep", "expect"), [
    ([1, 2], "line 2: sweep: must be an object of lists"),
    ({}, "line 2: sweep: must be an object of lists"),
    ({"resolution": "720p"}, "line 2: sweep: resolution: must be a list of at least one"),
    ({"resolution": []}, "line 2: sweep: resolution: must be a list of at least one"),
    ({"options": [{}]}, "line 2: sweep: options cannot be swept"),
    ({"seed": [1, "two"]}, "line 2: seed: must be a whole number, not text (sweep seed=two)"),
    ({"resolution": [720]}, "line 2: resolution: must be text, not a number"),
    # a line break in a swept value is shown escaped: the error stays one line
    ({"audio": ["\n"]}, 'line 2: audio: must be true or false (sweep audio="\\n")'),
])
def test_bad_sweeps_are_one_line_naming_line_and_field(sweep, expect):
    ok = sweep_line(prompt="fine")
    assert refused("\n".join([ok, sweep_line(prompt="p", sweep=sweep)])).startswith(expect)


def test_a_line_over_the_cap_is_refused_before_building_anything(monkeypatch):
    big = sweep_line(prompt="{a}{b}", sweep={"a": list(range(11)), "b": list(range(10))})
    message = refused(big)
    assert message.startswith("line 1: sweep: expands to 110 requests (11 a x 10 b); "
                              f"a line may expand to at most {batchfile.MAX_PER_LINE}")
    assert len(expand_line(1, big, limit=110)) == 110
    monkeypatch.setattr(batchfile, "MAX_REQUESTS", 150)
    ok = sweep_line(prompt="{a}", sweep={"a": list(range(100))})
    assert refused("\n".join([ok, ok])).startswith("line 2: more than 150 requests")


def test_cli_shows_count_total_and_first_lines_and_max_cost_is_for_the_whole(run, tmp_path):
    batch = write_batch(tmp_path / "sweep.jsonl", [
        {"model": T2V, "prompt": "a {animal} at dawn", "duration": "5s",
         "sweep": {"animal": ["fox", "owl", "cat"], "resolution": ["720p", "1080p"]}},
        {"model": T2V, "prompt": "plain", "duration": "5s"},
    ])
    # 5 s at $0.05/s with audio (x1.25): $0.3125 at 720p, $0.50 at 1080p; 3 of each + 1
    code, out, err = run("batch", str(batch), "--yes", "--max-cost", "2.50")
    assert code == 2 and "total $2.75 is above --max-cost $2.50" in one_line(err)
    assert "7 jobs from 2 lines (sweeps expanded), total $2.75" in out
    assert "line 1 [animal=fox resolution=720p]: " + T2V + " 5s 720p $0.31 'a fox at dawn'" in out
    assert "line 1 [animal=cat resolution=1080p]" in out and "line 2: " in out
    assert charged(run.sim) == 0  # refused before a single paid call

    code, out, err = run("batch", str(batch), "--yes", "--max-cost", "2.75", "--submit-only")
    assert code == 0, err
    sent = sorted((body["prompt"], body.get("resolution"))
                  for body in (job.body for job in run.sim.state.jobs_snapshot()))
    assert sent == sorted([(f"a {a} at dawn", r) for a in ("fox", "owl", "cat")
                           for r in ("720p", "1080p")] + [("plain", None)])


def test_cli_refuses_a_line_over_the_cap_before_sending(run, tmp_path):
    batch = write_batch(tmp_path / "big.jsonl", [
        {"model": T2V, "prompt": "{n}", "duration": "5s", "sweep": {"n": list(range(101))}}])
    code, _, err = run("batch", str(batch), "--yes")
    assert code == 2 and one_line(err).startswith(
        "wan-tui: line 1: sweep: expands to 101 requests")
    assert charged(run.sim) == 0


async def test_the_batch_screen_shows_the_expansion_and_its_total(sim, tmp_path):
    from test_app import dashboard, until

    from tui.app.screens.batch import BatchScreen

    path = write_batch(tmp_path / "sweep.jsonl", [
        {"model": T2V, "prompt": "a {animal}", "duration": "5s",
         "sweep": {"animal": ["fox", "owl"], "resolution": ["720p", "1080p"]}}])
    async with dashboard(sim) as (app, pilot, facade):
        await app.push_screen(BatchScreen(facade, path))
        screen = app.screen
        await until(pilot, lambda: screen.check is not None, 10, "batch checked")
        total = str(screen.query_one("#total").render())
        assert total == "4 jobs from 1 line (sweeps expanded) · total $1.62"
        assert screen.check.variants[3] == "animal=owl resolution=1080p"
        assert [r.prompt for r in screen.check.requests] == ["a fox", "a fox", "a owl",
                                                             "a owl"]
        assert not screen.query_one("#submit").disabled
    assert charged(sim) == 0


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(),
                    st.text(max_size=8), st.lists(st.integers(0, 3), max_size=2))
_SWEEPS = st.one_of(
    st.dictionaries(st.sampled_from(["resolution", "seed", "duration", "audio", "animal",
                                     "shot_type", "prompt", "options", "sweep", "x y"]),
                    st.one_of(st.lists(_VALUES, max_size=5), _VALUES), max_size=4),
    _VALUES)


@settings(deadline=None, max_examples=200)
@given(_SWEEPS)
def test_any_sweep_is_its_product_of_requests_or_one_line_naming_its_line(sweep):
    text = json.dumps({"model": "m", "prompt": "a {animal}", "duration": "5s",
                       "sweep": sweep}, allow_nan=True)
    try:
        lines = expand_line(4, text)
    except BatchError as err:
        assert str(err).startswith("line 4: ") and "\n" not in str(err)
        return
    assert isinstance(sweep, dict)
    assert len(lines) == math.prod(len(v) for v in sweep.values()) <= batchfile.MAX_PER_LINE
    assert all(b.line == 4 and b.variant for b in lines)
