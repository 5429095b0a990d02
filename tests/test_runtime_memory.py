"""The engine's memory of run times per model: siblings share what one job learns."""

from __future__ import annotations

from tui.engine.runtimes import RunTimeMemory

KEY = ("venice", "wan-2.5-preview-text-to-video")
OTHER = ("venice", "kling-2.6-pro-text-to-video")


def test_a_siblings_estimate_gives_every_job_of_the_model_a_distribution():
    memory = RunTimeMemory()
    assert memory.runs(KEY) is None
    assert memory.learn_estimate(KEY, 138.0) is True  # news: the siblings can plan now
    assert memory.learn_estimate(KEY, 138.0) is False  # the same answer again is not
    runs = memory.runs(KEY)
    assert runs is not None and runs is memory.runs(KEY)  # built once, kept
    assert memory.learn_estimate(KEY, 150.0) is False  # a change, but nobody was waiting
    assert memory.runs(KEY) is not runs
    assert memory.runs(OTHER) is None  # per model


def test_history_alone_gives_a_distribution_and_finishes_extend_it():
    memory = RunTimeMemory(max_samples=3)
    memory.remember_history(KEY, [100.0, 0.0, 104.0])
    assert memory.has_history(KEY) and not memory.has_history(OTHER)
    before = memory.runs(KEY)
    assert before is not None and 90 < before.median < 115
    memory.remember_history(KEY, [500.0])  # read once per engine: a second read is ignored
    for n, seconds in enumerate((60.0, 62.0, 61.0)):
        memory.learn_run(KEY, seconds, now=1000.0 + n)
    after = memory.runs(KEY)
    assert after.median < before.median  # the three newest, all faster, outweigh the rest
    assert after.cdf(80.0) > 0.5


def test_a_job_plans_with_the_run_times_known_at_its_submit():
    # Its own batch's early finishers, learned while it runs, would bias it early.
    memory = RunTimeMemory()
    memory.remember_history(KEY, [100.0, 104.0, 98.0])
    memory.learn_estimate(KEY, 110.0)
    at_submit = memory.runs(KEY, known_before=1000.0)
    for n, seconds in enumerate((70.0, 71.0, 72.0, 73.0)):
        memory.learn_run(KEY, seconds, now=1000.0 + n)
    assert memory.runs(KEY, known_before=1000.0).median == at_submit.median  # unchanged
    later = memory.runs(KEY, known_before=2000.0)  # a job submitted after they finished
    assert later.cdf(75.0) > at_submit.cdf(75.0) + 0.2


def test_a_jobs_own_recorded_estimate_stands_in_until_one_is_heard():
    memory = RunTimeMemory()
    assert memory.runs(KEY, own_estimate=120.0) is not None
    assert memory.estimate(KEY) == 120.0


def test_one_job_probes_and_its_siblings_wait_for_the_answer():
    memory = RunTimeMemory()
    assert memory.probe(KEY, due=103.0, now=100.0, patience_s=30) is None  # the first asks
    assert memory.probe(KEY, due=103.5, now=100.5, patience_s=30) == 103.0  # the next waits
    assert memory.probe(OTHER, due=103.5, now=100.5, patience_s=30) is None  # other model
    assert memory.probe(KEY, due=104.0, now=120.0, patience_s=30) == 103.0  # answer is late
    assert memory.probe(KEY, due=140.0, now=134.0, patience_s=30) is None  # too late: ask
    memory.probe_answered(KEY)  # (with no estimate in it: a provider that sends none)
    assert memory.probe(KEY, due=150.0, now=149.0, patience_s=30) is None  # nobody waits
    assert memory.probe(KEY, due=149.0, now=149.0, patience_s=30) is None  # earlier: asks
