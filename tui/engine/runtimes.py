"""What one engine knows about each model's run times while it runs.

Per (provider, model): the server's latest estimate (a P80 -- one job's answer serves every
sibling), the run times of finished jobs (the history, read once, then extended as jobs
finish here), and the distribution the schedule plans with, rebuilt only when one of those
changes. Also who is probing: when nothing is known yet, one job polls early to learn the
estimate and its siblings wait for that answer instead of each asking the same question.
No IO and no asyncio: the engine feeds it and reads it.
"""

from __future__ import annotations

from tui.engine.schedule import RunTimes, learned_estimate

Key = tuple[str, str]  # (provider, model)


class RunTimeMemory:
    def __init__(self, max_samples: int = 50) -> None:
        self.max_samples = max_samples
        self._estimates: dict[Key, float] = {}
        self._durations: dict[Key, list[float]] = {}  # newest first
        self._runs: dict[Key, RunTimes | None] = {}
        self._probes: dict[Key, float] = {}  # when the probing job's early poll is due

    def has_history(self, key: Key) -> bool:
        return key in self._durations

    def remember_history(self, key: Key, durations: list[float], replace: bool = False) -> None:
        """The store's run times of this model (newest first): read once per engine, or
        read again (`replace`) while a model has too little to go on."""
        if replace or key not in self._durations:
            runs = [d for d in durations if d > 0][: self.max_samples]
            if runs != self._durations.get(key):
                self._durations[key] = runs
                self._runs.pop(key, None)

    def learn_estimate(self, key: Key, estimate_s: float | None) -> bool:
        """A job's answer carried the server's estimate. True when the model had no
        distribution before: its siblings can now plan their first poll."""
        if not estimate_s or estimate_s <= 0 or self._estimates.get(key) == estimate_s:
            return False
        first = self.runs(key) is None
        self._estimates[key] = estimate_s
        self._runs.pop(key, None)
        self._probes.pop(key, None)
        return first

    def learn_run(self, key: Key, seconds: float) -> None:
        """A job of this model finished after `seconds` (from its submit to seen ready)."""
        if seconds <= 0:
            return
        runs = self._durations.setdefault(key, [])
        runs.insert(0, seconds)
        del runs[self.max_samples:]
        self._runs.pop(key, None)
        self._probes.pop(key, None)

    def estimate(self, key: Key) -> float | None:
        return self._estimates.get(key)

    def learned_p80(self, key: Key, min_samples: int) -> float | None:
        """The P80 of the model's known run times (None with fewer than `min_samples`)."""
        return learned_estimate(self._durations.get(key, []), min_samples)

    def runs(self, key: Key, own_estimate: float | None = None) -> RunTimes | None:
        """The distribution to plan with (None: nothing known about the model yet). A job's
        own recorded estimate stands in while the engine has heard none this run."""
        if key not in self._estimates and own_estimate:
            self._estimates[key] = own_estimate
            self._runs.pop(key, None)
        if key not in self._runs:
            self._runs[key] = RunTimes.build(self._estimates.get(key),
                                             self._durations.get(key, ()), self.max_samples)
        return self._runs[key]

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
