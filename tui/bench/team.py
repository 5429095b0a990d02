"""Team database benchmark: how soon a window sees another connection's change, and what
a job's writes cost, on PostgreSQL (LISTEN/NOTIFY) next to SQLite (data_version polled).

    WAN_TUI_DATABASE=postgresql://USER@HOST/DB python -m tui.bench.team [--changes 300]

The database must be empty or a scratch one: the benchmark records its own jobs there.
Without WAN_TUI_DATABASE only SQLite (in a temporary folder) is measured.

What the figures mean
- notification latency: from just before a writer's `update()` (one committed transaction:
  a job's progress) to the moment another Store on its own connection(s) sees its
  data_version change (`wait_for_change`). On PostgreSQL that is the commit, the server's
  NOTIFY and the listener waking; on SQLite it is the commit plus the window's 50 ms poll.
  Changes are 20 ms apart, one at a time.
- commit: the writer's update() alone (one transaction: read, update, read back).
- statements per job: what a job's life takes through the store (added in a batch of 50,
  then submitting, queued, processing, downloading, done), BEGIN and COMMIT included,
  counted on the connection; on PostgreSQL each is a round trip to the server (a batch's
  executemany is one pipeline and counted once).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tui.jobs import JobRequest, JobState
from tui.store import open_store


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def _latency(target: Path | str, changes: int) -> dict[str, float]:
    writer = await open_store(target)
    window = await open_store(target)
    try:
        (job,) = await writer.add_jobs([JobRequest(model="m", prompt="bench")])
        await window.wait_for_change(0, 0.5)
        seen: list[float] = []
        commits: list[float] = []
        for i in range(changes):
            version = await window.data_version()
            start = time.perf_counter()
            await writer.update(job.id, progress=i / changes)
            commits.append(time.perf_counter() - start)
            if not await window.wait_for_change(version, 5.0):
                raise RuntimeError("a change was not seen within 5 s")
            seen.append(time.perf_counter() - start)
            await asyncio.sleep(0.02)
    finally:
        await writer.close()
        await window.close()
    return {"p50_ms": 1000 * statistics.median(seen), "p95_ms": 1000 * _pct(seen, 0.95),
            "max_ms": 1000 * max(seen), "commit_p50_ms": 1000 * statistics.median(commits)}


def _patch(cls: type, methods: tuple) -> None:
    for name, method in zip(("fetch", "run", "run_many"), methods, strict=True):
        setattr(cls, name, method)


class StatementCount:
    """Statements a store sends, counted where they are sent (tui.bench.fleet uses it too):
    SQLite's trace of every statement; on PostgreSQL every execute on the statement
    connection, a batch's pipeline once, BEGIN and COMMIT as two (as SQLite's trace counts
    them). `await count.attach(store)`, read `count.n`, `count.detach()` at the end."""

    def __init__(self) -> None:
        self.n = 0
        self._real: tuple | None = None

    async def attach(self, store: Any) -> None:
        if hasattr(store, "_db"):
            def traced(_: str) -> None:
                self.n += 1
            await store._db.set_trace_callback(traced)
            return
        from tui.store import postgres

        real = self._real = (postgres._PgTx.fetch, postgres._PgTx.run, postgres._PgTx.run_many)
        counter = self

        async def fetch(self, sql, params=()):
            counter.n += 1
            return await real[0](self, sql, params)

        async def run(self, sql, params=()):
            counter.n += 1
            return await real[1](self, sql, params)

        async def run_many(self, sql, rows):
            counter.n += 1  # one pipeline: its statements travel together
            return await real[2](self, sql, rows)

        _patch(postgres._PgTx, (fetch, run, run_many))
        transact = store._transact

        async def counted(body):
            self.n += 2
            return await transact(body)

        store._transact = counted

    def detach(self) -> None:
        if self._real is not None:
            from tui.store import postgres

            _patch(postgres._PgTx, self._real)
            self._real = None


async def _round_trips(target: Path | str, jobs: int = 50) -> float:
    """Statements per job over its whole life, counted where they are sent."""
    store = await open_store(target)
    count = StatementCount()
    await count.attach(store)
    try:
        made = await store.add_jobs([JobRequest(model="m", prompt=f"rt {i}")
                                     for i in range(jobs)])
        for job in made:
            for state in (JobState.SUBMITTING, JobState.QUEUED, JobState.PROCESSING,
                          JobState.DOWNLOADING, JobState.DONE):
                await store.transition(job.id, state, "bench")
    finally:
        count.detach()
        await store.close()
    return count.n / jobs


async def run(changes: int) -> None:
    targets: list[tuple[str, Path | str]] = []
    tmp = tempfile.TemporaryDirectory(prefix="wan-tui-bench-")
    targets.append(("sqlite", Path(tmp.name) / "history.db"))
    dsn = os.environ.get("WAN_TUI_DATABASE")
    if dsn:
        targets.append(("postgresql", dsn))
    print(f"# team database benchmark ({platform.python_implementation()} "
          f"{platform.python_version()}, load {os.getloadavg()[0]:.2f}), {changes} changes")
    try:
        for name, target in targets:
            lat = await _latency(target, changes)
            trips = await _round_trips(target)
            print(f"{name:10} seen p50 {lat['p50_ms']:6.1f} ms  p95 {lat['p95_ms']:6.1f} ms  "
                  f"max {lat['max_ms']:6.1f} ms  commit p50 {lat['commit_p50_ms']:5.1f} ms  "
                  f"statements per job {trips:.1f}")
    finally:
        tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(run(args.changes))


if __name__ == "__main__":
    main()
