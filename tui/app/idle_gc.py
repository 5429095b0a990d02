"""Full garbage collections while nobody is typing.

With 1 000 jobs running, the dashboard keeps tens of thousands of objects alive (jobs,
drawn rows, the engine's state). Python's automatic full collection walks them all: 20 to
50 ms in which no key is answered, every few seconds at random (and up to 400 ms once
garbage has piled up). Short collections (the young generations) stay automatic; the full
one runs here instead, when the user has not touched a key for a second. One overdue (a
minute of steady typing) takes the next short pause; and so that memory stays bounded
however busy the user is, none waits longer than `LONGEST_S`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

QUIET_S = 1.0  # no input for this long: a pause now delays nobody's key
EVERY_S = 30.0  # at most this often while nobody types (after typing: at the first pause)
OVERDUE_S = 60.0  # after this long, a shorter pause will do ...
SHORT_QUIET_S = 0.3  # ... this one (a breath between keys, not a key-repeat)
LONGEST_S = 300.0  # at least this often, typing or not
NEVER = 1_000_000  # young collections before an automatic full one: never, in practice
FULL_AFTER = 10  # middle-generation collections that make a full one worth its time


class IdleCollector:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.input_at = clock()
        self.collected_at = clock()
        self.collections = 0
        self._typed = False  # input since the last full collection
        self._young_at = gc.get_stats()[1]["collections"]
        self._thresholds: tuple[int, int, int] | None = None

    def start(self) -> None:
        """Take full collections off the automatic schedule (young ones stay)."""
        if self._thresholds is None:
            self._thresholds = gc.get_threshold()
            gen0, gen1, _ = self._thresholds
            gc.set_threshold(gen0, gen1, NEVER)

    def stop(self) -> None:
        """Back to Python's own schedule (the app has ended)."""
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None

    def touched(self) -> None:
        """A key or a click arrived."""
        self.input_at = self.clock()
        self._typed = True

    def _young_since(self) -> int:
        """Collections of the middle generation since the last full one: each moves what
        survived it into the oldest generation, which only a full collection looks at."""
        return gc.get_stats()[1]["collections"] - self._young_at

    def tick(self) -> bool:
        """Collect if now is a good moment and there is something to collect; True if it
        did. Python itself runs a full collection after 10 middle ones: so does this, at
        the next pause (a dashboard left alone makes no garbage, so costs nothing)."""
        if self._young_since() < FULL_AFTER:
            return False
        now = self.clock()
        since = now - self.collected_at
        quiet = now - self.input_at
        if (quiet >= QUIET_S and (since >= EVERY_S or self._typed)) \
                or (quiet >= SHORT_QUIET_S and since >= OVERDUE_S) or since >= LONGEST_S:
            gc.collect()
            self.collected_at = self.clock()
            self._typed = False
            self._young_at = gc.get_stats()[1]["collections"]
            self.collections += 1
            return True
        return False
