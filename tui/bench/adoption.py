"""Adoption: how soon a team's engines take over the jobs of one that died.

    WAN_TUI_DATABASE=postgresql://USER@HOST/SCRATCH python -m tui.bench.adoption
    python -m tui.bench.adoption --engines 3 --jobs 30 --scale 0.2      # the defaults

The database must be a scratch one (it is emptied first). Three engines, each a process of
its own playing a machine (its own WAN_TUI_ENGINE_NAME and output folder), record their
share of the jobs at the same moment on one Venice key; once every job of the first engine
has its remote id, that engine is SIGKILLed, and the others adopt its jobs when their
leases (30 s) run out, then follow them to their own folders.

Time is scaled as in `tui.bench.engine` (every engine and the simulator read one clock
running 1/scale times faster than the wall, `tui.bench.shared_budget.team_clock`), so the
figures are in the seconds a real run would see.

Figures: from the SIGKILL to each adoption event (the lease, less what had run of it since
the dead engine's last renewal, plus the adopter's next look); every job finished, each
submitted once; makespan against its bound (the last job's ready time plus one download),
429s, and the database statements per job of the surviving engines. The fleet's throughput
(300 jobs on one key) is `tui.bench.shared_budget`'s, notification latency `tui.bench.team`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from tui.bench.engine import KEY, SCENARIOS, lower_bound, start_sim
from tui.bench.shared_budget import host_on_team_clock, team_clock
from tui.bench.team import StatementCount
from tui.engine import Engine, JobChanged
from tui.engine.host import EngineHost
from tui.engine.lock import EngineLock
from tui.jobs import JobRequest, JobState
from tui.providers.venice import VeniceProvider
from tui.store import open_store

QUEUE = "/api/v1/video/queue"
RETRIEVE = "/api/v1/video/retrieve"


# ------------------------------------------------------------------ one engine (a process)

async def worker(name: str, sim_url: str, scale: float, origin: float, out: Path,
                 jobs: int, models: list[str], dsn: str) -> None:
    os.environ["WAN_TUI_ENGINE_NAME"] = name  # the store stamps jobs with their origin
    clock = team_clock(origin, scale)
    store = await open_store(dsn, clock=clock.now)
    count = StatementCount()
    await count.attach(store)
    provider = VeniceProvider(sim_url, KEY)
    engine = Engine(store, {"venice": provider}, output_dir=out, clock=clock, rescan_s=0)
    # Run as `wan-tui engine run` runs it: the host's inbox looks for work (jobs to adopt
    # among them) when the database tells it of some, and every 2 s anyway. Its lock is a
    # file of its own (each engine plays a machine).
    host_on_team_clock(scale)
    out.mkdir(parents=True, exist_ok=True)
    host = EngineHost(engine, store, EngineLock(out / "engine.lock"), role="bench")
    ends: dict[str, float] = {}

    def on_event(event: object) -> None:
        done = isinstance(event, JobChanged) and event.transition and (
            event.job.state == JobState.DONE and event.job.remote_id)
        if done:
            assert isinstance(event, JobChanged) and event.job.remote_id
            ends[event.job.remote_id] = clock.now()

    engine.subscribe(on_event)
    await host.claim()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await engine.add([JobRequest(model=models[i % len(models)], prompt=f"{name} clip {i}",
                                 duration="5s") for i in range(jobs)])
    while await store.active_heads():  # every engine stays until the whole fleet is done
        await asyncio.sleep(0.25)
    await host.release()
    print(json.dumps({"name": name, "ends": ends, "statements": count.n,
                      "adopted": engine.leases.adopted, "lost": engine.leases.lost}),
          flush=True)
    count.detach()
    await provider.aclose()
    await store.close()


# ------------------------------------------------------------------ the fleet

def spawn(name: str, sim_url: str, scale: float, origin: float, out: Path, jobs: int,
          dsn: str) -> subprocess.Popen[str]:
    env = {**os.environ, "WAN_TUI_DATABASE": dsn}
    return subprocess.Popen(
        [sys.executable, "-m", "tui.bench.adoption", "--worker", name, "--sim", sim_url,
         "--scale", str(scale), "--origin", repr(origin), "--out", str(out), "--jobs",
         str(jobs)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


async def _emptied(dsn: str) -> None:
    import psycopg

    await (await open_store(dsn)).close()  # migrated: every table is there
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE events, jobs, requests, engines, rate_spend, rate_blocks, meta")


async def fleet(dsn: str, engines: int, jobs: int, scale: float) -> dict[str, Any]:
    scenario = replace(SCENARIOS["venice300"], jobs=jobs)
    await _emptied(dsn)
    origin = time.time()
    clock = team_clock(origin, scale)
    with tempfile.TemporaryDirectory(prefix="wan-tui-adoption-") as tmp, \
            start_sim(scenario, clock) as sim:
        names = [f"machine-{i + 1}" for i in range(engines)]
        procs = [spawn(n, sim.url("venice"), scale, origin, Path(tmp) / n, jobs // engines, dsn)
                 for n in names]
        try:
            for proc in procs:
                assert proc.stdout is not None
                line = await asyncio.to_thread(proc.stdout.readline)
                if line.strip() != "ready":
                    raise RuntimeError(f"an engine did not start: {line!r}")
            start = clock.now()
            wall = time.monotonic()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            killed_at = await _kill_when_submitted(dsn, names[0], jobs // engines,
                                                   procs[0], clock)
            reports = []
            for proc in procs[1:]:  # the first was killed
                assert proc.stdout is not None
                reports.append(json.loads(await asyncio.to_thread(proc.stdout.readline)))
            wall_s = time.monotonic() - wall
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        ends = {rid: t for r in reports for rid, t in r["ends"].items()}
        provider = VeniceProvider(sim.url("venice"), KEY)
        bound = await lower_bound(sim, provider, clock, start, Path(tmp))
        await provider.aclose()
        state = sim.state
        result: dict[str, Any] = {
            "engines": engines, "jobs": jobs, "finished": len(ends), "wall_s": wall_s,
            "makespan_s": max(ends.values()) - start if ends else float("nan"),
            "bound_s": bound,
            "queue": state.counter("venice", QUEUE), "queue_429": state.counter(
                "venice", QUEUE, 429),
            "retrieve": state.counter("venice", RETRIEVE),
            "retrieve_429": state.counter("venice", RETRIEVE, 429),
            "statements_per_job": sum(r["statements"] for r in reports) / max(1, len(ends)),
            "adopted": sum(r["adopted"] for r in reports),
        }
        result["adoption_s"] = await _adoptions(dsn, killed_at)
        return result


async def _kill_when_submitted(dsn: str, name: str, jobs: int, proc: subprocess.Popen[str],
                               clock: Any) -> float:
    """SIGKILL engine `name` once all its jobs have their remote id; when, on the fleet's
    clock (the one the engines stamp events with)."""
    store = await open_store(dsn)
    try:
        while True:
            rows = await store.list_jobs()
            mine = [j for j in rows if j.origin == name]
            if len(mine) == jobs and all(j.remote_id for j in mine):
                break
            await asyncio.sleep(0.05)
    finally:
        await store.close()
    os.kill(proc.pid, signal.SIGKILL)
    return clock.now()


async def _adoptions(dsn: str, killed_at: float) -> list[float]:
    """Seconds (fleet clock) from the kill to each adoption event."""
    store = await open_store(dsn)
    try:
        jobs = await store.list_jobs()
        found = []
        for job in jobs:
            for event in await store.events(job.id):
                if event.detail.startswith("adopted by engine"):
                    found.append(event.at)
    finally:
        await store.close()
    return [at - killed_at for at in found]


def _print(r: dict[str, Any], scale: float) -> None:
    print(f"\n{r['engines']} engines, {r['jobs']} jobs, one key (40 queue, "
          f"120 retrieve a minute)")
    print(f"  finished {r['finished']}/{r['jobs']}  makespan {r['makespan_s']:.0f} s  "
          f"bound {r['bound_s']:.0f} s  ratio {r['makespan_s'] / r['bound_s']:.3f}  "
          f"(wall {r['wall_s']:.0f} s at scale {scale:g})")
    q = 100 * r["queue_429"] / r["queue"] if r["queue"] else 0.0
    t = 100 * r["retrieve_429"] / r["retrieve"] if r["retrieve"] else 0.0
    both = r["queue"] + r["retrieve"]
    a = 100 * (r["queue_429"] + r["retrieve_429"]) / both if both else 0.0
    print(f"  429s: queue {r['queue_429']}/{r['queue']} ({q:.2f} %), retrieve "
          f"{r['retrieve_429']}/{r['retrieve']} ({t:.2f} %), all {a:.2f} %")
    print(f"  database statements per finished job {r['statements_per_job']:.1f}")
    times = r["adoption_s"]
    if times:
        print(f"  adopted {len(times)} jobs, {min(times):.1f}-{max(times):.1f} s after "
              "the SIGKILL (lease 30 s)")
    else:
        print("  no job was adopted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--sim", help=argparse.SUPPRESS)
    parser.add_argument("--origin", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    dsn = os.environ.get("WAN_TUI_DATABASE", "")
    if not dsn.startswith(("postgresql://", "postgres://")):
        parser.error("set WAN_TUI_DATABASE to a scratch PostgreSQL database's DSN")
    if args.worker:
        asyncio.run(worker(args.worker, args.sim, args.scale, args.origin, args.out, args.jobs,
                           list(SCENARIOS["venice300"].models), dsn))
        return
    if not 0 < args.scale <= 1:
        parser.error(f"--scale {args.scale}: give a number above 0 and at most 1")
    if args.engines < 2:
        parser.error("--engines: at least 2 (one is killed, another adopts)")
    print(f"# adoption benchmark: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.2f}")
    result = asyncio.run(fleet(dsn, args.engines, args.jobs, args.scale))
    _print(result, args.scale)
    print(f"# load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
