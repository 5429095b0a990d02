"""When to poll a job next. Pure functions of time: no IO, no asyncio.

A fixed 5-second poll costs 12 requests a minute per job. Instead we sleep until the job
could plausibly be done (a fraction of the expected run time), then poll tightly, and
loosen again the longer a job runs overdue. The expected run time is the provider's own
estimate (Venice's P80) or, for providers without one, the P80 of that model's past run
times from history -- the same schedule either way.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class PollPolicy:
    first_poll_s: float = 3.0  # first status request: learns the server's estimate early
    start_fraction: float = 0.65  # tight polling starts at this fraction of the estimate
    tight_fraction: float = 0.027  # tight interval as a fraction of the estimate
    min_interval_s: float = 1.0
    max_interval_s: float = 30.0
    no_estimate_interval_s: float = 5.0  # nothing known about the model yet
    no_estimate_growth: float = 0.1  # ... then a tenth of the elapsed time, to max_interval
    backoff_base_s: float = 2.0  # 429/5xx: full-jitter exponential backoff from here
    backoff_max_s: float = 60.0
    max_consecutive_errors: int = 12  # server errors on one job before it is called failed
    download_attempts: int = 5
    min_history: int = 3  # finished jobs of a model before its learned duration is used
    batch_gather_s: float = 0.2  # batch-polling providers: wait this long to gather a round

    def scaled(self, factor: float) -> PollPolicy:
        """The same policy with every duration multiplied (tests and demos run faster)."""
        return replace(
            self,
            first_poll_s=self.first_poll_s * factor,
            min_interval_s=self.min_interval_s * factor,
            max_interval_s=self.max_interval_s * factor,
            no_estimate_interval_s=self.no_estimate_interval_s * factor,
            backoff_base_s=self.backoff_base_s * factor,
            backoff_max_s=self.backoff_max_s * factor,
            batch_gather_s=self.batch_gather_s * factor,
        )


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def next_poll_delay(policy: PollPolicy, elapsed_s: float, estimate_s: float | None,
                    polls_so_far: int, start_fraction: float | None = None) -> float:
    """Seconds to wait before the next status request of a job that has run `elapsed_s`.

    `start_fraction` overrides the policy's when history says this model finishes earlier
    (see `learned_start`)."""
    if not estimate_s and polls_so_far == 0:
        # Poll once early: the first answer carries the server's estimate (or confirms the id).
        return max(policy.first_poll_s - elapsed_s, policy.min_interval_s * 0.5)
    if not estimate_s:
        interval = max(policy.no_estimate_interval_s, policy.no_estimate_growth * elapsed_s)
        return _clamp(interval, policy.min_interval_s, policy.max_interval_s)
    start = (start_fraction or policy.start_fraction) * estimate_s
    if start - elapsed_s >= policy.min_interval_s:
        return start - elapsed_s  # one long sleep until it could be done
    tight = _clamp(policy.tight_fraction * estimate_s, policy.min_interval_s,
                   policy.max_interval_s)
    if elapsed_s <= estimate_s:
        return tight
    # Overdue (a P80 is passed by one job in five): loosen in proportion to how late it is.
    overdue = (elapsed_s - estimate_s) / estimate_s
    return _clamp(tight * (1.0 + 2.0 * overdue), policy.min_interval_s, policy.max_interval_s)


def backoff_delay(policy: PollPolicy, attempt: int, retry_after: float | None = None,
                  rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff; a server's Retry-After is a floor, never ignored."""
    rng = rng or random
    cap = min(policy.backoff_max_s, policy.backoff_base_s * (2 ** max(0, attempt - 1)))
    delay = rng.uniform(cap / 2, cap)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def learned_estimate(durations: Sequence[float], min_samples: int) -> float | None:
    """A P80 of past run times: the same kind of figure Venice reports, learned locally."""
    values = sorted(d for d in durations if d > 0)
    if len(values) < min_samples:
        return None
    index = min(len(values) - 1, int(round(0.8 * (len(values) - 1))))
    return values[index]


def learned_start(policy: PollPolicy, durations: Sequence[float],
                  estimate_s: float | None) -> float:
    """Where tight polling starts, as a fraction of the estimate.

    The default suits run times within about ±25 % of the mean; a model whose past jobs
    finished earlier relative to its estimate starts a little before the earliest of them.
    """
    values = [d for d in durations if d > 0]
    if not estimate_s or len(values) < policy.min_history:
        return policy.start_fraction
    earliest = 0.95 * min(values) / estimate_s
    return max(0.3, min(policy.start_fraction, earliest))


def likelihood_done(elapsed_s: float, estimate_s: float | None) -> float:
    """A priority for the request budget: jobs nearest (or past) their estimate go first."""
    if not estimate_s:
        return 0.5
    return min(elapsed_s / estimate_s, 2.0)


def count_polls(policy: PollPolicy, run_s: float, estimate_s: float | None,
                start_fraction: float | None = None) -> tuple[int, float]:
    """Simulate the schedule for one job that finishes at `run_s`: (polls, ready→seen delay).

    Used by tests and benchmarks to reason about the schedule without any sleeping.
    """
    t = 0.0
    polls = 0
    while True:
        t += next_poll_delay(policy, t, estimate_s, polls, start_fraction)
        polls += 1
        if t >= run_s:
            return polls, t - run_s
