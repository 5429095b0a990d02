"""Engine benchmark: wan-tui's poll scheduling against a fixed 5-second poller.

    python -m tui.bench.engine                 # every scenario, time scaled 1/5 (~15 minutes)
    python -m tui.bench.engine short           # one scenario (names below)
    python -m tui.bench.engine --scale 1       # real time
    python -m tui.bench.engine --quick         # --scale 0.1: a sanity check
    python -m tui.bench.engine base --warm     # and the engine again on its own history

Each scenario runs the same batch twice, one run after the other (side by side they would
compete for the two cores and the delays would measure the machine): once with a fixed
5-second poller (what most clients do: submit, then ask every 5 s; a 429 is simply asked
again next time) and once with the wan-tui engine. Each run gets its own simulator with the
same seed, so the same run times. Scenarios:

    base       40 jobs, three Venice models with means 80, 120 and 144 s at ±25 %
               (run times 60-180 s), no binding rate limit
    limit60    30 of those jobs with the retrieve limit at 60 a minute
    short      30 jobs of 8-16 s with the retrieve limit at 60 a minute
    wide       40 jobs like `base` at ±50 % (run times 40-216 s)
    venice300  300 jobs like `base` under Venice's default limits (40 queue and 120
               retrieve requests a minute): the makespan against its lower bound
    wire       the engine alone, 40 jobs of 8-16 s over HTTPS in real time (whatever
               --scale says: the round trip is wall time), four runs side by side: a round
               trip of 0 and of 100 ms, connections kept and not

Time is scaled, not shrunk: the simulator (job clock and rate windows) and the engine share
one clock that runs `1/scale` times faster than the wall, so every figure below is in the
simulated seconds a real run would see -- a 60 s window still holds 60 s of requests, a
P80 is still the same number of seconds. Only our own latency (HTTP on loopback, the SQLite
writes, the download) is stretched by 1/scale, equally for both pollers.

Figures:
- retrieves/job: status requests the simulator answered, 429s included (the poll that returns
  the video counts: on Venice it *is* the download), divided by jobs finished;
- delay: from the moment the simulator would first serve the video ("ready") to the moment
  the file is whole on disk (renamed after checks), mean and 95th percentile;
- 429s: the share of retrieve calls answered 429;
- makespan: from the first submit to the last file on disk; its lower bound is the last
  job's ready time plus one download of that job's video, timed after the run;
- wire: connections the simulator accepted and TLS handshakes it made, per finished job.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tui.engine import Engine, JobChanged
from tui.engine.clock import Clock
from tui.engine.files import output_name, save_stream
from tui.jobs import Job, JobRequest, JobState
from tui.providers.base import Processing, ProviderError, RateLimited, Ready
from tui.providers.venice import VeniceProvider
from tui.sim.server import SimServer
from tui.sim.state import Faults, SimConfig, SimJob, SimState
from tui.store import open_store

KEY = "sim-venice-key"
VENICE_MODELS = {  # model id → simulated mean run time (s)
    "wan-2.5-preview-text-to-video": 80.0,
    "wan-2-7-text-to-video": 120.0,
    "kling-2.6-pro-text-to-video": 144.0,
}
RETRIEVE = "/api/v1/video/retrieve"
QUEUE = "/api/v1/video/queue"
UNLIMITED = 100_000
FIXED_EVERY_S = 5.0
SEED = 2026  # every measured run: the same run times


@dataclass(frozen=True)
class Scenario:
    name: str
    jobs: int
    models: dict[str, float]
    spread: float = 0.25
    retrieve_limit: int = UNLIMITED
    queue_limit: int = UNLIMITED
    about: str = ""
    wire: bool = False  # the engine alone over HTTPS: round trip and keep-alive compared


SCENARIOS = {s.name: s for s in (
    Scenario("base", 40, VENICE_MODELS, about="40 jobs of 60-180 s (±25 %), no binding limit"),
    Scenario("limit60", 30, VENICE_MODELS, retrieve_limit=60,
             about="30 jobs of 60-180 s, retrieve limit 60/min"),
    Scenario("short", 30, {"wan-2.5-preview-text-to-video": 12.0}, spread=1 / 3,
             retrieve_limit=60, queue_limit=40,
             about="30 jobs of 8-16 s, retrieve limit 60/min"),
    Scenario("wide", 40, VENICE_MODELS, spread=0.5,
             about="40 jobs of 40-216 s (±50 %), no binding limit"),
    Scenario("venice300", 300, VENICE_MODELS, retrieve_limit=120, queue_limit=40,
             about="300 jobs of 60-180 s under Venice's defaults (40 queue, 120 retrieve/min)"),
    Scenario("wire", 40, {"wan-2.5-preview-text-to-video": 12.0}, spread=1 / 3, wire=True,
             about="40 jobs of 8-16 s over HTTPS in real time: round trip and keep-alive"),
)}
WIRE_RUNS = ((0.0, True), (0.0, False), (0.1, True), (0.1, False))  # (round trip s, kept)


class ScaledClock(Clock):
    """Simulated seconds that pass `1/scale` times faster than the wall's."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._origin = time.time()
        self._mono = time.monotonic()

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._mono) / self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) * self.scale)

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        return await super().wait(event, max(0.0, seconds) * self.scale)


@dataclass
class Result:
    name: str
    jobs: int
    finished: int = 0
    retrieves: int = 0
    retrieves_429: int = 0
    queue_429: int = 0
    delays: list[float] = field(default_factory=list)
    makespan_s: float = 0.0
    bound_s: float = 0.0
    wall_s: float = 0.0
    connections: int = 0
    handshakes: int = 0
    requests: int = 0  # every request the simulator answered (submits, polls, downloads)

    def per_finished(self, count: int) -> float:
        return count / self.finished if self.finished else math.nan

    @property
    def per_job(self) -> float:
        return self.retrieves / self.finished if self.finished else math.nan

    @property
    def mean_delay(self) -> float:
        return sum(self.delays) / len(self.delays) if self.delays else math.nan

    @property
    def p95_delay(self) -> float:
        if not self.delays:
            return math.nan
        ordered = sorted(self.delays)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def share_429(self) -> float:
        return 100 * self.retrieves_429 / self.retrieves if self.retrieves else 0.0


def requests_for(scenario: Scenario) -> list[JobRequest]:
    models = list(scenario.models)
    return [JobRequest(model=models[i % len(models)], prompt=f"benchmark clip {i}",
                       duration="5s") for i in range(scenario.jobs)]


def sim_config(scenario: Scenario, seed: int = SEED, rtt_s: float = 0.0) -> SimConfig:
    return SimConfig(
        tls=scenario.wire,
        rtt_s=rtt_s,
        mean_s=120.0,
        spread=scenario.spread,
        model_means=dict(scenario.models),
        seed=seed,
        video_seconds=2.0,
        faults=Faults(retrieve_limit_per_min=scenario.retrieve_limit,
                      queue_limit_per_min=scenario.queue_limit, failure_block_threshold=20),
    )


def start_sim(scenario: Scenario, clock: ScaledClock, seed: int = SEED, rtt_s: float = 0.0):
    """The simulator on the scaled clock, rendering each clip as soon as its job is queued
    (its own render timer counts wall seconds, which the scaled job clock outruns)."""
    context = SimServer.running(sim_config(scenario, seed, rtt_s), clock=clock.now,
                                rate_clock=clock.now)

    def render_now(state: SimState, job: SimJob) -> None:
        if not job.failed and not job.expired:
            asyncio.ensure_future(state.ensure_clip(job))  # runs on the simulator's loop

    class Started:
        def __enter__(self) -> SimServer:
            sim = context.__enter__()
            if sim.ca_file is not None:  # the client trusts the simulator's CA, as a user would
                os.environ["SSL_CERT_FILE"] = str(sim.ca_file)
            # The simulator's hook, replaced on purpose for the scaled clock.
            sim.state.render_when_ready = (  # type: ignore[method-assign]
                lambda job: render_now(sim.state, job))
            return sim

        def __exit__(self, *exc: Any) -> None:
            context.__exit__(*exc)

    return Started()


def ready_at(sim: SimServer, remote_id: str) -> float:
    job = sim.state.job(remote_id)
    assert job is not None and job.ready_at is not None, remote_id  # it was downloaded
    return job.ready_at


def collect(result: Result, sim: SimServer, start: float, ends: dict[str, float]) -> None:
    result.retrieves = sim.state.counter("venice", RETRIEVE)
    result.retrieves_429 = sim.state.counter("venice", RETRIEVE, 429)
    result.queue_429 = sim.state.counter("venice", QUEUE, 429)
    result.finished = len(ends)
    stats = sim.stats()
    result.connections, result.handshakes = stats["connections"], stats["tls_handshakes"]
    result.requests = stats["requests"]
    result.delays = [end - ready_at(sim, rid) for rid, end in ends.items()]
    if ends:
        result.makespan_s = max(ends.values()) - start


async def lower_bound(sim: SimServer, provider: VeniceProvider, clock: ScaledClock,
                      start: float, out: Path) -> float:
    """The last job's ready time plus one download of its video (fetched once more now)."""
    last = max(sim.state.jobs_snapshot(), key=lambda j: j.ready_at)
    job = Job(id=0, request=JobRequest(model=last.model, prompt=last.prompt),
              state=JobState.PROCESSING, created_at=0.0, updated_at=0.0,
              remote_id=last.remote_id)
    began = clock.now()
    outcome = await provider.poll(job)
    if isinstance(outcome, Ready) and outcome.stream is not None:
        await save_stream(outcome.stream, out / "bound.mp4")
    return last.ready_at - start + (clock.now() - began)


async def fixed_poller(scenario: Scenario, scale: float, out: Path) -> Result:
    """What most clients do: submit, then ask every 5 seconds until the video comes."""
    result = Result(f"fixed {FIXED_EVERY_S:.0f} s poller", scenario.jobs)
    clock = ScaledClock(scale)
    ends: dict[str, float] = {}
    with start_sim(scenario, clock) as sim:
        provider = VeniceProvider(sim.url("venice"), KEY)
        start = clock.now()

        async def submit(req: JobRequest) -> str:
            while True:
                try:
                    return (await provider.submit(req)).remote_id
                except RateLimited as err:  # the queue limit: not accepted, wait and resend
                    await clock.sleep(err.retry_after or FIXED_EVERY_S)

        async def one(i: int, req: JobRequest) -> None:
            remote_id = await submit(req)
            job = Job(id=i, request=req, state=JobState.QUEUED, created_at=clock.now(),
                      updated_at=clock.now(), remote_id=remote_id)
            while True:
                await clock.sleep(FIXED_EVERY_S)
                try:
                    outcome = await provider.poll(job)
                except ProviderError:
                    continue  # a 429 or a 5xx: just ask again next time, as they do
                if isinstance(outcome, Processing):
                    continue
                if isinstance(outcome, Ready) and outcome.stream is not None:
                    await save_stream(outcome.stream, out / output_name(i, req.model, "fixed"))
                    ends[remote_id] = clock.now()
                return

        wall = time.monotonic()
        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests_for(scenario))))
        result.wall_s = time.monotonic() - wall
        collect(result, sim, start, ends)
        result.bound_s = await lower_bound(sim, provider, clock, start, out)
        await provider.aclose()
    return result


async def engine_run(scenario: Scenario, scale: float, out: Path,
                     name: str = "wan-tui engine", seed: int = SEED, *, rtt_s: float = 0.0,
                     keepalive: bool = True) -> Result:
    result = Result(name, scenario.jobs)
    clock = ScaledClock(scale)
    ends: dict[str, float] = {}
    with start_sim(scenario, clock, seed, rtt_s) as sim:
        store = await open_store(out / "history.db", clock=clock.now)
        policy = replace(VeniceProvider.default_policy, keepalive=keepalive)
        provider = VeniceProvider(sim.url("venice"), KEY, policy=policy)
        engine = Engine(store, {"venice": provider}, output_dir=out, clock=clock, rescan_s=0)

        def on_event(event: object) -> None:
            if isinstance(event, JobChanged) and event.transition:
                job = event.job
                if job.state == JobState.DONE and job.remote_id:
                    ends[job.remote_id] = clock.now()

        engine.subscribe(on_event)
        await engine.start(resume=False)
        start = clock.now()
        wall = time.monotonic()
        await engine.add(requests_for(scenario))
        await engine.wait_idle()
        result.wall_s = time.monotonic() - wall
        await engine.stop()
        collect(result, sim, start, ends)
        result.bound_s = await lower_bound(sim, provider, clock, start, out)
        await provider.aclose()
        await store.close()
    return result


async def wire_runs(scenario: Scenario) -> list[Result]:
    """The engine over HTTPS, one run per (round trip, keep-alive), in real time, after a
    small run that is not reported: the first run of a process pays for loading the video
    encoder and the TLS machinery (about 2 s of delay per job here), which would otherwise
    count against whichever run comes first."""
    with tempfile.TemporaryDirectory() as tmp:
        await engine_run(replace(scenario, jobs=4), 1.0, Path(tmp), "warm-up")
    results = []
    for rtt_s, kept in WIRE_RUNS:
        with tempfile.TemporaryDirectory() as tmp:
            name = f"{rtt_s * 1000:.0f} ms, keep-alive {'on' if kept else 'off'}"
            results.append(await engine_run(scenario, 1.0, Path(tmp), name, rtt_s=rtt_s,
                                            keepalive=kept))
    return results


def report_wire(scenario: Scenario, results: list[Result]) -> None:
    print(f"\n[{scenario.name}] {scenario.about}")
    print(f"  {'':24} {'done':>8} {'conns/job':>9} {'TLS/job':>8} {'requests/job':>12} "
          f"{'delay mean':>10} {'delay p95':>9} {'wall':>6}")
    for r in results:
        print(f"  {r.name:24} {r.finished:>4}/{r.jobs:<3} "
              f"{r.per_finished(r.connections):>9.2f} {r.per_finished(r.handshakes):>8.2f} "
              f"{r.per_finished(r.requests):>12.2f} {r.mean_delay:>9.2f}s "
              f"{r.p95_delay:>8.2f}s {r.wall_s:>5.0f}s")


async def run_scenario(scenario: Scenario, scale: float, warm: bool) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        fixed_dir, engine_dir = Path(tmp) / "fixed", Path(tmp) / "engine"
        fixed_dir.mkdir()
        engine_dir.mkdir()
        results = [await fixed_poller(scenario, scale, fixed_dir),
                   await engine_run(scenario, scale, engine_dir)]
        if warm:
            # A history of one earlier batch (other run times, drawn alike), then this
            # batch measured on it.
            warm_dir = Path(tmp) / "warm"
            warm_dir.mkdir()
            await engine_run(scenario, scale, warm_dir, seed=SEED + 1)
            results.append(await engine_run(scenario, scale, warm_dir,
                                            "engine, warm history"))
    return results


def report(scenario: Scenario, fixed: Result, ours: Result, *warm: Result) -> None:
    print(f"\n[{scenario.name}] {scenario.about}")
    print(f"  {'':22} {'done':>8} {'retrieves/job':>13} {'delay mean':>10} "
          f"{'delay p95':>9} {'429s':>6} {'makespan':>9} {'bound':>7} {'wall':>6}")
    for r in (fixed, ours, *warm):
        over = f"{r.makespan_s:8.0f}s {r.bound_s:6.0f}s" if r.finished else f"{'-':>9} {'-':>7}"
        print(f"  {r.name:22} {r.finished:>4}/{r.jobs:<3} {r.per_job:>13.2f} "
              f"{r.mean_delay:>9.2f}s {r.p95_delay:>8.2f}s {r.share_429:>5.1f}% {over} "
              f"{r.wall_s:>5.0f}s")
    if fixed.finished and ours.finished:
        print(f"  engine/fixed retrieves per job {ours.per_job / fixed.per_job:.2f}; "
              f"engine makespan {ours.makespan_s / ours.bound_s:.3f}x its lower bound; "
              f"queue 429s: fixed {fixed.queue_429}, engine {ours.queue_429}")
    for r in warm:
        print(f"  warm: engine/fixed retrieves per job {r.per_job / fixed.per_job:.2f}")


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui.bench.engine")
    parser.add_argument("scenario", nargs="*",
                        help=f"scenarios to run: {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--scale", type=float, default=0.2,
                        help="wall seconds per simulated second (default 0.2; 1 = real time)")
    parser.add_argument("--quick", action="store_true", help="the same as --scale 0.1")
    parser.add_argument("--warm", action="store_true",
                        help="also run the engine again on the history its first run left")
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else args.scale
    if not 0 < scale <= 1:
        parser.error(f"--scale {scale}: give a number above 0 and at most 1")
    unknown = [name for name in args.scenario if name not in SCENARIOS]
    if unknown:
        parser.error(f"no scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    print(f"machine: {platform.machine()}, {platform.python_implementation()} "
          f"{platform.python_version()}, {platform.system()} {platform.release()}; "
          f"time scale {scale:g} (figures in simulated seconds)")
    for name in args.scenario or list(SCENARIOS):
        scenario = SCENARIOS[name]
        if scenario.wire:
            report_wire(scenario, asyncio.run(wire_runs(scenario)))
        else:
            report(scenario, *asyncio.run(run_scenario(scenario, scale, args.warm)))
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
