"""The poll schedule as pure arithmetic (no sleeping): run-time distributions and the
polls placed by them.

Simulated jobs are drawn like the simulator draws them (uniform within the mean ±spread,
Venice's estimate the P80 of that draw); a poll schedule is walked through for each run
time and its polls and delay counted.
"""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from tui.engine.schedule import (
    PollPolicy,
    RunTimes,
    backoff_delay,
    learned_estimate,
    next_poll_at,
    request_worth,
)

POLICY = PollPolicy()


def p80(mean: float, spread: float) -> float:
    return mean * (1 + 0.6 * spread)


def walk(runs: RunTimes | None, run_s: float, worth: float | None = None,
         policy: PollPolicy = POLICY) -> tuple[list[float], float]:
    """The poll times (seconds after the submit) of a job that finishes at `run_s`, and how
    long it sat finished before the poll that found it."""
    polls: list[float] = []
    since = 0.0
    while True:
        at = next_poll_at(policy, runs, since, len(polls), worth)
        assert at > since  # time always moves on
        polls.append(at)
        if at >= run_s:
            return polls, at - run_s
        since = at


def batch(mean: float, spread: float, count: int, seed: int, history: int = 0,
          worth: float | None = None) -> tuple[float, float, float]:
    """(polls per job, mean delay, a fixed 5 s poller's polls per job)."""
    rng = random.Random(seed)
    draw = lambda: rng.uniform(mean * (1 - spread), mean * (1 + spread))  # noqa: E731
    runs = RunTimes.build(p80(mean, spread), [draw() for _ in range(history)])
    polls = delay = fixed = 0.0
    for _ in range(count):
        run_s = draw()
        times, late = walk(runs, run_s, worth)
        polls += len(times)
        delay += late
        fixed += int(run_s // 5) + 1
    return polls / count, delay / count, fixed / count


def test_nothing_known_means_no_distribution():
    assert RunTimes.build(None, []) is None
    assert RunTimes.build(None, [0.0, -3.0]) is None  # clock-skewed rows teach nothing


def test_the_prior_honours_the_servers_p80():
    runs = RunTimes.build(138.0)
    assert 0.75 <= runs.cdf(138.0) <= 0.85
    assert runs.cdf(0.3 * 138) == 0.0  # nothing finishes in a third of its P80
    assert runs.survival(1e6) == 0.0
    assert all(runs.cdf(a) <= runs.cdf(b) for a, b in pairwise(range(0, 407, 7)))


def test_expected_wait_is_the_integral_it_claims():
    runs = RunTimes.build(138.0, [100.0, 110.0, 95.0])
    since, at = 80.0, 118.0
    steps = 20_000
    width = (at - since) / steps
    numeric = sum(runs.chance_done(since, since + (i + 0.5) * width) for i in range(steps))
    assert runs.expected_wait(since, at) == pytest.approx(numeric * width, rel=1e-4)
    assert runs.expected_wait(since, since) == 0.0


def test_known_estimate_means_no_early_poll():
    # The first poll goes where the job could first be done, not 3 s in to ask.
    runs = RunTimes.build(138.0)
    first = next_poll_at(POLICY, runs, 0.0, 0)
    assert first > 0.38 * 138 and runs.cdf(first) > 0
    assert runs.chance_done(0.0, first) < 0.25  # ... and soon after, while finishes are rare


def test_without_anything_known_one_early_poll_then_growing_intervals():
    first = next_poll_at(POLICY, None, 0.0, 0)
    assert first == POLICY.first_poll_s
    times = [first]
    for n in range(1, 40):
        times.append(next_poll_at(POLICY, None, times[-1], n))
    gaps = [b - a for a, b in pairwise(times)]
    assert gaps[0] == POLICY.no_estimate_interval_s
    assert gaps == sorted(gaps) and gaps[-1] == POLICY.max_interval_s


def test_dense_where_finishes_are_likely_sparse_in_the_tail():
    runs = RunTimes.build(138.0)
    times, _ = walk(runs, 10_000.0)  # a job that never finishes: the whole schedule
    gaps = [(at, b - at) for at, b in pairwise(times)]
    body = [gap for at, gap in gaps if 0.7 * 138 <= at <= 1.05 * 138]
    tail = [gap for at, gap in gaps if 1.5 * 138 <= at <= 3 * 138]
    assert max(body) < min(tail)
    assert all(gap <= POLICY.max_interval_s + 1e-9 for at, gap in gaps if at >= runs.median)
    assert min(gap for _, gap in gaps) >= POLICY.min_interval_s - 1e-9
    # far past anything plausible: one poll every max_interval_s, no busy loop
    assert next_poll_at(POLICY, runs, 1e6, 50) == 1e6 + POLICY.max_interval_s


def test_a_third_of_a_fixed_pollers_requests_at_no_more_delay():
    # Venice's case with nothing learned yet: jobs of 60-180 s (three models, ±25 %), the
    # estimate from the server. A fixed 5 s poller's mean delay is 2.5 s.
    results = [batch(mean, 0.25, 300, seed) for seed, mean in enumerate((80.0, 120.0, 144.0))]
    polls = sum(r[0] for r in results)
    fixed = sum(r[2] for r in results)
    delay = sum(r[1] for r in results) / len(results)
    assert polls <= 0.35 * fixed, (polls, fixed)
    assert delay <= 2.5, delay


def test_history_sharpens_the_schedule():
    cold = batch(120.0, 0.25, 300, seed=3)
    learned = batch(120.0, 0.25, 300, seed=3, history=30)
    assert learned[0] < 0.85 * cold[0], (cold, learned)
    assert learned[1] <= 3.0


def test_history_finds_jobs_faster_than_the_prior_guessed():
    # A model whose jobs take 35-55 % of its P80 (the server's estimate is far off): the
    # prior alone finds them late; twenty finished jobs put the polls where they are.
    rng = random.Random(9)
    history = [rng.uniform(0.35, 0.55) * 200 for _ in range(20)]
    prior, learned = RunTimes.build(200.0), RunTimes.build(200.0, history)
    runs = [rng.uniform(0.35, 0.55) * 200 for _ in range(200)]
    late = lambda dist: sum(walk(dist, r)[1] for r in runs) / len(runs)  # noqa: E731
    assert late(learned) < 0.5 * late(prior)
    assert late(learned) <= 3.0


def test_a_tight_budget_makes_each_request_worth_more():
    # Down to 20 requests a minute for each job, a request is worth the same; below that,
    # proportionally more.
    assert request_worth(POLICY, 1, 120) == POLICY.request_worth_s
    assert request_worth(POLICY, 6, 120) == POLICY.request_worth_s
    assert request_worth(POLICY, 12, 120) == pytest.approx(2 * POLICY.request_worth_s)
    assert request_worth(POLICY, 30, 60) == pytest.approx(10 * POLICY.request_worth_s)
    assert request_worth(POLICY, 0, 60) == POLICY.request_worth_s


def test_short_jobs_under_a_tight_budget_cost_about_one_and_a_half_requests():
    # 30 jobs of 8-16 s sharing 60 retrieves a minute (the estimate already known).
    worth = request_worth(POLICY, 30, 60)
    polls, delay, _ = batch(12.0, 1 / 3, 300, seed=4, worth=worth)
    assert polls <= 1.3 and delay < 6.0, (polls, delay)


def test_chance_done_grows_while_a_job_waits():
    runs = RunTimes.build(138.0)
    chances = [runs.chance_done(90.0, at) for at in (90.0, 100.0, 120.0, 150.0, 400.0)]
    assert chances[0] == 0.0 and chances == sorted(chances) and chances[-1] > 0.95
    assert RunTimes.build(138.0).chance_done(1e6, 2e6) == 1.0


def test_scaled_policy_scales_the_worth_of_a_request():
    assert PollPolicy().scaled(0.1).request_worth_s == pytest.approx(0.1 * POLICY.request_worth_s)


def test_learned_estimate_is_a_p80_and_needs_history():
    assert learned_estimate([100.0, 110.0], 3) is None
    assert learned_estimate([float(x) for x in range(100, 200)], 3) == 179.0


def test_backoff_has_jitter_and_honours_retry_after():
    rng = random.Random(2)
    delays = {round(backoff_delay(POLICY, 3, None, rng), 3) for _ in range(20)}
    assert len(delays) > 10 and all(4.0 <= d <= 8.0 for d in delays)
    assert backoff_delay(POLICY, 1, 30.0, rng) >= 30.0
    assert backoff_delay(POLICY, 50, None, rng) <= POLICY.backoff_max_s
