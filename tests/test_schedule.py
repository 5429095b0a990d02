"""The poll schedule as pure arithmetic (no sleeping)."""

from __future__ import annotations

import random

from tui.engine.schedule import (
    PollPolicy,
    backoff_delay,
    count_polls,
    learned_estimate,
    learned_start,
    next_poll_delay,
)

POLICY = PollPolicy()


def fixed_poller(run_s: float, every: float = 5.0) -> int:
    return int(run_s // every) + 1


def test_estimate_halves_polls_without_losing_time():
    # Venice's case: jobs 90-150 s, P80 estimate 138 s reported from the first poll on.
    rng = random.Random(1)
    runs = [rng.uniform(90, 150) for _ in range(500)]
    ours = [count_polls(POLICY, r, 138.0) for r in runs]
    polls = sum(p for p, _ in ours) + len(runs)  # +1: the first poll learns the estimate
    delay = sum(d for _, d in ours) / len(runs)
    assert polls <= 0.5 * sum(fixed_poller(r) for r in runs)
    assert delay <= 2.5  # the fixed 5 s poller's mean delay


def test_without_an_estimate_intervals_grow_but_stay_bounded():
    delays = [next_poll_delay(POLICY, t, None, n) for n, t in enumerate([0, 3, 60, 600, 6000])]
    assert delays[0] == POLICY.first_poll_s
    assert delays[1] == POLICY.no_estimate_interval_s
    assert delays[2] < delays[3] <= POLICY.max_interval_s
    assert delays[4] == POLICY.max_interval_s


def test_overdue_jobs_are_polled_less_and_less_often():
    at_estimate = next_poll_delay(POLICY, 100, 100, 5)
    late = next_poll_delay(POLICY, 150, 100, 5)
    assert POLICY.min_interval_s <= at_estimate < late <= POLICY.max_interval_s


def test_never_a_zero_wait_near_the_start_point():
    # Float rounding can leave `elapsed` a hair below the start: that must not busy-poll.
    est = 113.61020693008322
    start = POLICY.start_fraction * est
    assert next_poll_delay(POLICY, start - 1e-12, est, 1) >= POLICY.min_interval_s


def test_learned_estimate_is_a_p80_and_needs_history():
    assert learned_estimate([100.0, 110.0], 3) is None
    assert learned_estimate([float(x) for x in range(100, 200)], 3) == 179.0


def test_backoff_has_jitter_and_honours_retry_after():
    rng = random.Random(2)
    delays = {round(backoff_delay(POLICY, 3, None, rng), 3) for _ in range(20)}
    assert len(delays) > 10 and all(4.0 <= d <= 8.0 for d in delays)
    assert backoff_delay(POLICY, 1, 30.0, rng) >= 30.0
    assert backoff_delay(POLICY, 50, None, rng) <= POLICY.backoff_max_s


def test_history_of_early_finishers_moves_the_start_earlier():
    assert learned_start(POLICY, [80.0, 90.0], 138.0) == POLICY.start_fraction  # too little
    early = learned_start(POLICY, [60.0, 100.0, 120.0], 138.0)
    assert early < POLICY.start_fraction and early * 138.0 < 60.0
    assert learned_start(POLICY, [130.0, 135.0, 140.0], 138.0) == POLICY.start_fraction
    # a job finishing at 62 s is then seen within one tight interval, not at 0.65 × 138 s
    polls, delay = count_polls(POLICY, 62.0, 138.0, early)
    assert delay <= POLICY.tight_fraction * 138.0 + 1e-9
