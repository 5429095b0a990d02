"""What one engine knows about each model's run times while it runs.

Per (provider, model): the server's latest estimate (a P80 -- one job's answer serves every
sibling), the run times of finished jobs (the history, read once, then extended as jobs
finish here), and the distribution the schedule plans with, rebuilt only when one of those
changes. A job plans with the run times known when it was submitted: those of siblings that
finish while it runs are the early finishers of its own batch (the slow ones are still
running), and would pull its polls towards where it already is.

Also who is probing: when nothing is known yet, one job polls early to learn the
estimate and its siblings wait for that answer instead of each asking the same question.
No IO and no asyncio: the engine feeds it and reads it.
"""

from __future__ import annotations

import math

from tui.engine.schedule import RunTimes, learned_estimate

Key = tuple[str, str]  # (provider, model)
_ALWAYS = -math.inf  # learned before anything this engine follows (read from the history)


class RunTimeMemory:
    def __init__(self, max_samples: int = 50) -> None:
        self.max_samples = max_samples
        self._estimates: dict[Key, float] = {}
        # (run time, when it was learned), newest first
        self._durations: dict[Key, list[tuple[float, float]]] = {}
        self._runs: dict[tuple[Key, int], RunTimes | None] = {}  # by how many run times
        self._probes: dict[Key, float] = {}  # when the probing job's early poll is due

    def has_history(self, key: Key) -> bool:
        return key in self._durations

    def remember_history(self, key: Key, durations: list[float], replace: bool = False) -> None:
        """The store's run times of this model (newest first): read once per engine, or
        read again (`replace`) while a model has too little to go on."""
        if replace or key not in self._durations:
            runs = [(d, _ALWAYS) for d in durations if d > 0][: self.max_samples]
            if runs != self._durations.get(key):
                self._durations[key] = runs
                self._forget(key)

    def learn_estimate(self, key: Key, estimate_s: float | None) -> bool:
        """A job's answer carried the server's estimate. True when the model had no
        distribution before: its siblings can now plan their first poll."""
        if not estimate_s or estimate_s <= 0 or self._estimates.get(key) == estimate_s:
            return False
        first = self.runs(key) is None
        self._estimates[key] = estimate_s
        self._forget(key)
        self._probes.pop(key, None)
        return first

    def learn_run(self, key: Key, seconds: float, now: float) -> None:
        """A job of this model finished after `seconds` (from its submit to seen ready)."""
        if seconds <= 0:
            return
        runs = self._durations.setdefault(key, [])
        runs.insert(0, (seconds, now))
        del runs[self.max_samples:]
        self._forget(key)
        self._probes.pop(key, None)

    def _forget(self, key: Key) -> None:
        for cached in [k for k in self._runs if k[0] == key]:
            del self._runs[cached]

    def estimate(self, key: Key) -> float | None:
        return self._estimates.get(key)

    def learned_p80(self, key: Key, min_samples: int) -> float | None:
        """The P80 of the model's known run times (None with fewer than `min_samples`)."""
        return learned_estimate([d for d, _ in self._durations.get(key, [])], min_samples)

    def runs(self, key: Key, own_estimate: float | None = None,
             known_before: float = math.inf) -> RunTimes | None:
        """The distribution to plan with (None: nothing known about the model yet), from
        the run times learned before `known_before` (a job's submit). A job's own recorded
        estimate stands in while the engine has heard none this run."""
        if key not in self._estimates and own_estimate:
            self._estimates[key] = own_estimate
            self._forget(key)
        known = [d for d, learned in self._durations.get(key, []) if learned < known_before]
        cached = (key, len(known))
        if cached not in self._runs:
            self._runs[cached] = RunTimes.build(self._estimates.get(key), known,
                                                self.max_samples)
        return self._runs[cached]

    def probe(self, key: Key, due: float, now: float, patience_s: float) -> float | None:
        """A job with nothing known plans its early poll at `due`. Returns None when it is
        the one to ask (the earliest), or the time a sibling asks: wait for that answer
        (`probe_answered` ends the wait; after `patience_s` past it nobody waits on it)."""
        current = self._probes.get(key)
        if current is not None and current <= due and now <= current + patience_s:
            return current
        self._probes[key] = due
        return None

    def probe_answered(self, key: Key) -> None:
        self._probes.pop(key, None)
