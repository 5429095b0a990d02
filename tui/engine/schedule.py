"""When to poll a job next. Pure functions of time and history: no IO, no asyncio.

A fixed 5-second poll costs 12 requests a minute per job. Instead each model's run times
are a distribution (`RunTimes`): the server's estimate (Venice's P80) as a prior, the run
times of the model's finished jobs as evidence that soon outweighs it. A poll is worth
sending when the delay it would end -- how long the job has probably sat finished, unseen,
given that the last poll found it running -- reaches what one request is worth
(`next_poll_at`): so one long sleep until the job could first be done, dense polls where
finishes are likely, sparse ones in the tail. When many jobs share a tight budget a request
is worth more (`request_worth`), and when one must wait, the job most likely finished since
its last poll goes first (`RunTimes.chance_done`, budget.py).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class PollPolicy:
    first_poll_s: float = 3.0  # a model never seen: one early request learns its estimate
    min_interval_s: float = 1.0
    max_interval_s: float = 30.0  # the longest gap once a job has run past its median
    no_estimate_interval_s: float = 5.0  # nothing known about the model yet
    no_estimate_growth: float = 0.1  # ... then a tenth of the elapsed time, to max_interval
    backoff_base_s: float = 2.0  # 429/5xx: full-jitter exponential backoff from here
    backoff_max_s: float = 60.0
    max_consecutive_errors: int = 12  # server errors on one job before it is called failed
    download_attempts: int = 5
    min_history: int = 3  # finished jobs before a learned P80 is shown as a job's estimate
    batch_gather_s: float = 0.2  # batch-polling providers: wait this long to gather a round
    # A status request is worth this many seconds of a finished video sitting unseen: polls
    # go where the delay they end is expected to reach it (see `next_poll_at`).
    request_worth_s: float = 0.4
    # ... while each followed job has a budget share of at least 20 requests a minute; with
    # less (many jobs share a tight limit) a request is worth proportionally more: requests
    # past the limit wait for the window to slide, far longer than any poll interval.
    comfortable_rate_per_min: float = 20.0
    # Settling `unknown` jobs from a provider's ledger (settle.py): how far our clock and
    # the provider's may disagree, and how often the ledger is read while such jobs wait.
    ledger_skew_s: float = 60.0
    settle_every_s: float = 60.0

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
            request_worth_s=self.request_worth_s * factor,
            ledger_skew_s=self.ledger_skew_s * factor,
            settle_every_s=self.settle_every_s * factor,
        )


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def backoff_delay(policy: PollPolicy, attempt: int, retry_after: float | None = None,
                  rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff; a server's Retry-After is a floor, never ignored."""
    cap = min(policy.backoff_max_s, policy.backoff_base_s * (2 ** max(0, attempt - 1)))
    delay = (rng or random).uniform(cap / 2, cap)
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


# ---------------------------------------------------------------- run-time distributions


@dataclass(frozen=True)
class _Kernel:
    """A share of the probability spread evenly over [low, high] seconds of run time."""

    low: float
    high: float
    weight: float


# A P80 alone says nothing about the spread. Most of the prior lies where run times spread
# ±25 % about their mean would put them (62-109 % of the P80); a wider share covers a spread
# of ±50 % (38-115 %), so such jobs are still looked for until history says where they are.
PRIOR = ((0.62, 1.09, 0.9), (0.38, 1.16, 0.1))  # (low, high, share) as fractions of the P80
PRIOR_WEIGHT = 3.0  # the prior counts as this many finished jobs
KERNEL_WIDTH = 0.06  # each past run time stands for run times within ±6 % of it
# Jobs far slower than any seen: a tail reaching 2, 4, ... 32 times the typical run time,
# each step half as likely, so an overdue job is polled ever more sparsely (never more than
# `max_interval_s` apart), and past 32 times the typical run time every `max_interval_s`.
TAIL_SHARE = 0.04
TAIL_STEPS = 5


class RunTimes:
    """A model's run-time distribution: P(run time ≤ x), and the integrals the schedule needs.

    Built from the server's estimate (a P80, the prior) and the run times of finished jobs
    of the model (newest first, as the store gives them); the prior counts as a few jobs, so
    a long history outweighs it. With neither there is no distribution (`build` gives None).
    """

    def __init__(self, kernels: Sequence[_Kernel]) -> None:
        total = sum(k.weight for k in kernels)
        self.kernels = [replace(k, weight=k.weight / total) for k in kernels]
        # plain tuples: cdf and its integral run thousands of times per poll plan
        self._spans = [(k.low, k.high, k.weight) for k in self.kernels]
        self.median = self.quantile(0.5)

    @classmethod
    def build(cls, estimate_s: float | None, durations: Sequence[float] = (),
              max_samples: int = 50) -> RunTimes | None:
        runs = [d for d in durations if d > 0][:max_samples]
        anchor = estimate_s if estimate_s and estimate_s > 0 else learned_estimate(runs, 1)
        if anchor is None:
            return None
        kernels = [_Kernel(anchor * low, anchor * high, PRIOR_WEIGHT * share)
                   for low, high, share in PRIOR]
        kernels += [_Kernel(d * (1 - KERNEL_WIDTH), d * (1 + KERNEL_WIDTH), 1.0) for d in runs]
        tail = sum(k.weight for k in kernels) * TAIL_SHARE / (1 - TAIL_SHARE)
        typical = RunTimes(kernels).median
        steps = [0.5 ** k for k in range(1, TAIL_STEPS + 1)]
        kernels += [_Kernel(0.5 * typical, typical * 2 ** k, tail * share / sum(steps))
                    for k, share in enumerate(steps, start=1)]
        return cls(kernels)

    def cdf(self, x: float) -> float:
        total = 0.0
        for low, high, weight in self._spans:
            if x >= high:
                total += weight
            elif x > low:
                total += weight * (x - low) / (high - low)
        return min(1.0, total)

    def survival(self, x: float) -> float:
        return max(0.0, 1.0 - self.cdf(x))

    def cdf_integral(self, x: float) -> float:
        """∫ cdf from -∞ to x."""
        total = 0.0
        for low, high, weight in self._spans:
            if x >= high:
                total += weight * ((high - low) / 2 + (x - high))
            elif x > low:
                total += weight * (x - low) ** 2 / (2 * (high - low))
        return total

    def quantile(self, q: float) -> float:
        low, high = 0.0, max(k.high for k in self.kernels)
        for _ in range(50):
            mid = (low + high) / 2
            if self.cdf(mid) < q:
                low = mid
            else:
                high = mid
        return high

    def chance_done(self, since_s: float, at_s: float) -> float:
        """P(run time ≤ at | run time > since): the chance that a poll at `at` (seconds
        after the submit) finds the job done when the poll at `since` did not."""
        alive = self.survival(since_s)
        if at_s <= since_s:
            return 0.0
        if alive <= 1e-12:
            return 1.0  # past everything we know: as likely done as it gets
        return min(1.0, (self.cdf(at_s) - self.cdf(since_s)) / alive)

    def expected_wait(self, since_s: float, at_s: float) -> float:
        """E[how long the job has sat finished by `at` | not done at `since`] in seconds:
        the delay a poll at `at` ends, ∫ P(done by u | not by since) du over (since, at]."""
        return self.waiting_since(since_s)(at_s)

    def waiting_since(self, since_s: float) -> Callable[[float], float]:
        """`expected_wait(since_s, ·)` with what depends only on `since_s` worked out once."""
        done_before = self.cdf(since_s)
        alive = max(0.0, 1.0 - done_before)
        base = self.cdf_integral(since_s)

        def wait(at_s: float) -> float:
            if at_s <= since_s:
                return 0.0
            if alive <= 1e-12:
                return at_s - since_s
            area = self.cdf_integral(at_s) - base
            return max(0.0, (area - done_before * (at_s - since_s)) / alive)

        return wait


def request_worth(policy: PollPolicy, jobs_sharing: int, limit_per_min: float) -> float:
    """Seconds of delay one status request is worth when `jobs_sharing` followed jobs share
    a budget of `limit_per_min` requests: scarce requests are spent only where they find
    more."""
    share = limit_per_min / max(1, jobs_sharing)
    return policy.request_worth_s * max(1.0, policy.comfortable_rate_per_min / max(share, 1e-9))


def next_poll_at(policy: PollPolicy, runs: RunTimes | None, since_s: float,
                 polls_so_far: int, worth_s: float | None = None) -> float:
    """Seconds after the submit for the next status request, given the last one (at
    `since_s`, or 0 before any) found the job still running.

    With a distribution: the poll goes where the delay it would end -- the time the job has
    probably sat finished, unseen -- is worth one request (`worth_s`, see `request_worth`). Where
    finishes are likely that comes quickly (dense polls); before the first likely finish and
    in the tail it comes slowly (one long sleep, then sparse polls). Once a job has run longer
    than half its model's jobs, no gap exceeds `policy.max_interval_s`.
    Without one (a model never seen, no estimate yet): one early poll to learn the estimate,
    then intervals that grow with the elapsed time.
    """
    if runs is None:
        if polls_so_far == 0:
            return max(policy.first_poll_s, since_s + policy.min_interval_s * 0.5)
        interval = max(policy.no_estimate_interval_s, policy.no_estimate_growth * since_s)
        return since_s + _clamp(interval, policy.min_interval_s, policy.max_interval_s)
    worth = policy.request_worth_s if worth_s is None else worth_s
    if runs.survival(since_s) <= 1e-9:
        return since_s + policy.max_interval_s  # later than anything we think possible
    longest = policy.max_interval_s if since_s >= runs.median else math.inf
    wait = runs.waiting_since(since_s)
    low = high = since_s + policy.min_interval_s
    if wait(low) >= worth:
        return low
    # The expected wait grows with the gap: double until it is worth a request, then halve
    # down to a hundredth of a second.
    while wait(high) < worth and high - since_s < longest:
        low, high = high, since_s + 2 * (high - since_s)
    while high - low > 0.01 and high - since_s <= longest:
        mid = (low + high) / 2
        if wait(mid) < worth:
            low = mid
        else:
            high = mid
    return min(high, since_s + longest)
