"""Shared rate budget benchmark: several engine processes on one provider key.

    WAN_TUI_DATABASE=postgresql://USER@HOST/DB python -m tui.bench.shared_budget
    python -m tui.bench.shared_budget --jobs 60 --scale 0.1      # shorter
    python -m tui.bench.shared_budget --local                    # the control alone

Three engines (separate processes, each with its own store connection) share one Venice key
on the simulator, under Venice's limits (40 submits and 120 status requests a minute), and
split 300 jobs of 60-180 s between them. Once with the budget shared through the team's
PostgreSQL database (tui/engine/sharedbudget.py), once (`--local`, or both by default) with
each engine on its own SQLite history, so each keeps only its own count: the way every
engine worked before.

Time is scaled as in `tui.bench.engine`: the simulator and every engine share one clock
running 1/scale times faster than the wall (a common origin, so processes agree), and the
figures are in its seconds.

Figures:
- 429s: the share of the simulator's rate-limited calls (submits and status requests)
  answered 429;
- makespan: from the first submit to the last job settled; bound: from the first submit to
  the moment the simulator has the last job's video ready (the download after it is left
  out, so the ratio errs against us);
- most in 60 s: the most calls of each class the simulator saw in any minute;
- store statements per job: everything each engine sent its history database (BEGIN and
  COMMIT counted, a pipeline once), all engines together, divided by jobs; of which the
  budget's: those of its slot transactions.

The database must be a scratch one: the benchmark records its jobs there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui.bench.team import StatementCount

VENICE_KEY = "sim-venice-key"
MODELS = {"wan-2.5-preview-text-to-video": 80.0, "wan-2-7-text-to-video": 120.0,
          "kling-2.6-pro-text-to-video": 144.0}


def team_clock(origin: float, scale: float) -> Any:
    """Every engine and the simulator on one scaled clock: a shared origin, the wall's pace
    times 1/scale (tui.bench.engine's ScaledClock, anchored at a wall instant that every
    process is given instead of its own start)."""
    from tui.bench.engine import ScaledClock

    class TeamClock(ScaledClock):
        def now(self) -> float:
            return origin + (time.time() - origin) / self.scale

    return TeamClock(scale)


def host_on_team_clock(scale: float) -> None:
    """The engine host's paces (its inbox's look, its full look, its status) are wall
    seconds: shrink them by `scale` as the clock is, so an engine looks as often per job as
    at real speed (and adopts as soon after a lease runs out)."""
    from tui.engine import host

    host.INBOX_EVERY_S *= scale
    host.FULL_LOOK_EVERY_S *= scale
    host.STATUS_EVERY_S *= scale


# ------------------------------------------------------------------ one engine (a process)


async def _count_statements(store: Any) -> Callable[[], dict[str, int]]:
    """Statements the store sends on PostgreSQL (tui.bench.team's StatementCount), and its
    slot takes with the statements sent while each ran; read the counts at the end."""
    slots = {"slots": 0, "slot_statements": 0}
    if hasattr(store, "_db"):  # SQLite: the control, whose 429s are what it is run for
        return lambda: {"statements": 0, **slots}
    count = StatementCount()
    await count.attach(store)
    take = store.take_rate_slot

    async def slot(*args: Any, **kw: Any) -> Any:
        slots["slots"] += 1
        before = count.n  # the store's lock runs one transaction at a time
        try:
            return await take(*args, **kw)
        finally:
            slots["slot_statements"] += count.n - before

    store.take_rate_slot = slot
    return lambda: {"statements": count.n, **slots}


async def engine_main() -> None:
    """One engine: its jobs (JOBS, models cycled), on TARGET, until all settle; prints a
    JSON line of what it saw."""
    from tui.engine import Engine
    from tui.engine.host import EngineHost
    from tui.engine.lock import EngineLock
    from tui.engine.schedule import PollPolicy
    from tui.jobs import JobRequest
    from tui.providers.venice import VeniceProvider
    from tui.store import open_store

    env = os.environ
    clock = team_clock(float(env["ORIGIN"]), float(env["SCALE"]))
    store = await open_store(env["TARGET"], clock=clock.now)
    counts = await _count_statements(store)
    provider = VeniceProvider(env["VENICE_BASE_URL"], env["VENICE_API_KEY"])
    engine = Engine(store, {"venice": provider}, output_dir=Path(env["OUT"]), clock=clock,
                    policy=PollPolicy(), rescan_s=0, write_sidecars=False)
    # Run as `wan-tui engine run` runs it: the host's inbox takes requests and rescans when
    # the database tells it of work (and every 2 s anyway), so its statements are counted
    # too. Its lock is a file of its own (each engine plays a machine).
    host_on_team_clock(float(env["SCALE"]))
    out = Path(env["OUT"])
    out.mkdir(parents=True, exist_ok=True)
    host = EngineHost(engine, store, EngineLock(out / "engine.lock"), role="bench")
    await host.claim()
    name = env["WAN_TUI_ENGINE_NAME"]
    models = env["MODELS"].split(",")
    jobs = await engine.add([JobRequest(model=models[i % len(models)], prompt=f"{name} {i}")
                             for i in range(int(env["JOBS"]))])
    await engine.wait_idle()
    settled = [await store.get(j.id) for j in jobs]
    result = {
        "states": [j.state.value for j in settled if j is not None],
        "submitted": min((j.submitted_at for j in settled if j and j.submitted_at),
                         default=None),
        "finished": max((j.finished_at for j in settled if j and j.finished_at),
                        default=None),
        "budget": type(engine.budget("venice", "queue")).__name__,
        "throttled": sum(b.total_throttled for b in engine.budgets.values()),
        "fallbacks": sum(getattr(b, "fallbacks", 0) for b in engine.budgets.values()),
        **counts(),
    }
    await host.release()
    await provider.aclose()
    await store.close()
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------ the team (the parent)


def most_in_a_window(times: list[float], window: float = 60.0) -> int:
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def start_engine(folder: Path, dsn: str | None, name: str, venice_url: str, origin: float,
                 scale: float, jobs: int, models: list[str]) -> subprocess.Popen[str]:
    """One engine process (engine_main) on the team clock, with `jobs` jobs of its own."""
    env = {**os.environ, "ORIGIN": repr(origin), "SCALE": str(scale),
           "TARGET": dsn or str(folder / name / "history.db"),
           "VENICE_BASE_URL": venice_url, "VENICE_API_KEY": VENICE_KEY,
           "OUT": str(folder / name / "videos"), "MODELS": ",".join(models),
           "JOBS": str(jobs), "WAN_TUI_ENGINE_NAME": name, "WAN_TUI_HOME": str(folder / name),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, "-m", "tui.bench.shared_budget", "engine"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def engine_result(child: subprocess.Popen[str], timeout_s: float) -> dict[str, Any]:
    """What an engine process printed once its jobs settled."""
    out, err = child.communicate(timeout=timeout_s)
    if child.returncode != 0:
        raise RuntimeError(f"an engine failed: {err[-3000:]}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def record_calls(sim: Any, clock: Any) -> list[tuple[str, float, bool]]:
    """From now on, (class, team clock time, accepted) of every rate-limited call the
    simulator answers (its admission is counted, not changed)."""
    calls: list[tuple[str, float, bool]] = []
    admit = sim.state.admit

    def recorded(provider: str, key: str, cls: str, limit: int) -> Any:
        gate = admit(provider, key, cls, limit)
        calls.append((cls, clock.now(), gate.allowed))
        return gate

    sim.state.admit = recorded
    return calls


def run_team(folder: Path, dsn: str | None, *, engines: int, jobs_each: int, scale: float,
             models: dict[str, float], queue_limit: int, retrieve_limit: int,
             spread: float = 0.25, timeout_s: float = 3600) -> dict[str, Any]:
    """`engines` engine processes on one Venice key of a simulator in this process, on the
    team's database `dsn` (None: each on its own SQLite history). Every rate-limited call
    the simulator sees is recorded with the team clock's time."""
    from tui.sim.server import SimServer
    from tui.sim.state import Faults, SimConfig

    origin = time.time()
    clock = team_clock(origin, scale)
    config = SimConfig(mean_s=120.0, model_means=models, spread=spread, seed=2026,
                       video_seconds=0.5,
                       faults=Faults(queue_limit_per_min=queue_limit,
                                     retrieve_limit_per_min=retrieve_limit,
                                     failure_block_threshold=0))
    with SimServer.running(config, clock=clock.now, rate_clock=clock.now) as sim:
        calls = record_calls(sim, clock)
        children = [start_engine(folder, dsn, f"machine-{n}", sim.url("venice"), origin,
                                 scale, jobs_each, list(models)) for n in range(engines)]
        try:
            results = [engine_result(child, timeout_s) for child in children]
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
        stats = sim.state.stats()
        ready = max((job.ready_at for job in sim.state.jobs_snapshot()), default=0.0)
    start = min(r["submitted"] for r in results if r["submitted"] is not None)
    return {
        "results": results, "stats": stats, "calls": calls,
        "most": {cls: most_in_a_window([at for c, at, _ in calls if c == cls])
                 for cls in ("queue", "retrieve")},
        "makespan_s": max(r["finished"] for r in results) - start,
        "bound_s": ready - start,
    }


def _report(label: str, run: dict[str, Any], jobs: int) -> None:
    calls = run["calls"]
    refused = sum(1 for *_, ok in calls if not ok)
    results = run["results"]
    done = sum(r["states"].count("done") for r in results)
    print(f"{label}: {done}/{jobs} done; 429s {refused}/{len(calls)} "
          f"({100 * refused / max(1, len(calls)):.2f} %); most in 60 s: "
          f"queue {run['most']['queue']}, retrieve {run['most']['retrieve']}; makespan "
          f"{run['makespan_s']:.0f} s, bound {run['bound_s']:.0f} s "
          f"(+{100 * (run['makespan_s'] / run['bound_s'] - 1):.1f} %)")
    statements = sum(r["statements"] for r in results)
    if any(r["slots"] for r in results):
        slots = sum(r["slots"] for r in results)
        slot_statements = sum(r["slot_statements"] for r in results)
        print(f"  store statements per job {statements / jobs:.1f}, of which the budget's "
              f"{slot_statements / jobs:.1f} ({slots / jobs:.1f} slot transactions per job, "
              f"{slot_statements / max(1, slots):.1f} statements each); fallbacks to the "
              f"local window {sum(r['fallbacks'] for r in results)}")


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["engine"]:
        asyncio.run(engine_main())
        return 0
    p = argparse.ArgumentParser(prog="python -m tui.bench.shared_budget",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=300, help="jobs, split between the engines")
    p.add_argument("--engines", type=int, default=3)
    p.add_argument("--scale", type=float, default=0.2, help="wall seconds per clock second")
    p.add_argument("--local", action="store_true", help="only the control (local budgets)")
    args = p.parse_args(args_in)
    dsn = os.environ.get("WAN_TUI_DATABASE")
    if not args.local and not dsn:
        print("set WAN_TUI_DATABASE to a scratch PostgreSQL database (or run --local)",
              file=sys.stderr)
        return 2
    each = max(1, args.jobs // args.engines)
    jobs = each * args.engines
    load = os.getloadavg()
    print(f"# shared rate budget: {args.engines} engines, {jobs} jobs, one Venice key at 40 "
          f"queue and 120 retrieve a minute, scale {args.scale:g} ({platform.node()}, load "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    with tempfile.TemporaryDirectory(prefix="wan-tui-bench-") as tmp:
        modes = [("local budgets", None)] if args.local else [("shared budget", dsn),
                                                              ("local budgets", None)]
        for label, target in modes:
            run = run_team(Path(tmp) / label.split()[0], target, engines=args.engines,
                           jobs_each=each, scale=args.scale, models=MODELS, queue_limit=40,
                           retrieve_limit=120)
            _report(label, run, jobs)
    load = os.getloadavg()
    print(f"# load after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
