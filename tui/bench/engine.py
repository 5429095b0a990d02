"""Engine benchmark: wan-tui's poll scheduling against a fixed 5-second poller.

    python -m tui.bench.engine            # real time: jobs of 60-180 s, about 12 minutes
    python -m tui.bench.engine --quick    # everything 10x faster, about 2 minutes

Each scenario gets its own simulator (same seed, so the same job run times) and runs the
same batch. Jobs come from three Venice models whose simulated means are 80, 120 and 144 s,
each drawn at the simulator's default spread (mean ±25 %), so run times cover 60-180 s and
each model's server estimate (P80) is honest for it. Figures:

- retrieves/job: status requests the simulator answered (the poll that returns the video
  counts: on Venice it *is* the download), divided by jobs finished;
- delay: from the moment the simulator would first serve the video ("ready") to the
  moment the file is whole on disk (renamed after checks), mean and max;
- 429 share: retrieve answers that were 429, for the rate-limit scenario.

Scenarios, run one after another: A fixed 5 s poller; B the engine; C/D both with the
simulator's retrieve limit at 60 a minute and 30 jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tui.engine import Engine, JobChanged
from tui.engine.files import output_name, save_stream
from tui.engine.schedule import PollPolicy
from tui.jobs import Job, JobRequest, JobState
from tui.providers.base import Processing, ProviderError, Ready
from tui.providers.venice import VeniceProvider
from tui.sim.server import SimServer
from tui.sim.state import Faults, SimConfig
from tui.store import Store

KEY = "sim-venice-key"
MODELS = {  # model id → simulated mean run time (s)
    "wan-2.5-preview-text-to-video": 80.0,
    "wan-2-7-text-to-video": 120.0,
    "kling-2.6-pro-text-to-video": 144.0,
}
RETRIEVE = "/api/v1/video/retrieve"


@dataclass
class Result:
    name: str
    jobs: int
    finished: int = 0
    retrieves: int = 0
    retrieves_429: int = 0
    delays: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def row(self) -> str:
        per_job = self.retrieves / self.finished if self.finished else float("nan")
        mean = sum(self.delays) / len(self.delays) if self.delays else float("nan")
        worst = max(self.delays) if self.delays else float("nan")
        share = 100 * self.retrieves_429 / self.retrieves if self.retrieves else 0.0
        return (f"{self.name:34} {self.finished:>3}/{self.jobs:<3} {per_job:>13.1f} "
                f"{mean:>10.2f} {worst:>9.2f} {share:>8.1f}% {self.wall_s:>7.0f}")


def requests_for(count: int) -> list[JobRequest]:
    models = list(MODELS)
    return [JobRequest(model=models[i % len(models)], prompt=f"benchmark clip {i}",
                       duration="5s") for i in range(count)]


def sim_config(scale: float, retrieve_limit: int) -> SimConfig:
    return SimConfig(
        mean_s=120.0 * scale,
        model_means={m: mean * scale for m, mean in MODELS.items()},
        seed=2026,
        video_seconds=2.0,
        faults=Faults(retrieve_limit_per_min=retrieve_limit, queue_limit_per_min=10_000,
                      failure_block_threshold=20),
    )


def collect(result: Result, sim: SimServer) -> None:
    result.retrieves = sim.state.counter("venice", RETRIEVE)
    result.retrieves_429 = sim.state.counter("venice", RETRIEVE, 429)


def ready_delay(sim: SimServer, remote_id: str, on_disk_monotonic: float) -> float:
    # The simulator's clock is time.monotonic: compare like with like.
    return on_disk_monotonic - sim.state.job(remote_id).ready_at


async def fixed_poller(name: str, count: int, scale: float, limit: int, out: Path) -> Result:
    """What most clients do: submit, then ask every 5 seconds until the video comes."""
    result = Result(name, count)
    started = time.monotonic()
    with SimServer.running(sim_config(scale, limit)) as sim:
        provider = VeniceProvider(sim.url("venice"), KEY)

        async def one(i: int, req: JobRequest) -> None:
            sub = await provider.submit(req)
            job = Job(id=i, request=req, state=JobState.QUEUED, created_at=time.time(),
                      updated_at=time.time(), remote_id=sub.remote_id)
            while True:
                await asyncio.sleep(5.0 * scale)
                try:
                    outcome = await provider.poll(job)
                except ProviderError:
                    continue  # a 429 or a 5xx: just ask again next time, as they do
                if isinstance(outcome, Processing):
                    continue
                if isinstance(outcome, Ready) and outcome.stream is not None:
                    await save_stream(outcome.stream, out / output_name(i, req.model, name))
                    result.delays.append(ready_delay(sim, sub.remote_id, time.monotonic()))
                    result.finished += 1
                return

        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests_for(count))))
        await provider.aclose()
        collect(result, sim)
    result.wall_s = time.monotonic() - started
    return result


async def engine_run(name: str, count: int, scale: float, limit: int, out: Path) -> Result:
    result = Result(name, count)
    started = time.monotonic()
    policy = PollPolicy().scaled(scale) if scale < 1 else PollPolicy()
    with SimServer.running(sim_config(scale, limit)) as sim:
        store = await Store.open(out / "history.db")
        provider = VeniceProvider(sim.url("venice"), KEY)
        engine = Engine(store, {"venice": provider}, output_dir=out, policy=policy, rescan_s=0)

        def on_event(event: object) -> None:
            if isinstance(event, JobChanged) and event.transition:
                job = event.job
                if job.state == JobState.DONE and job.remote_id:
                    result.delays.append(ready_delay(sim, job.remote_id, time.monotonic()))
                    result.finished += 1

        engine.subscribe(on_event)
        await engine.start(only=[])
        await engine.add(requests_for(count))
        await engine.wait_idle()
        await engine.stop()
        await provider.aclose()
        await store.close()
        collect(result, sim)
    result.wall_s = time.monotonic() - started
    return result


async def main(quick: bool) -> list[Result]:
    scale = 0.1 if quick else 1.0
    # The rate-limit scenarios keep the same budget per unit of job time.
    limit_60 = int(60 / scale)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp) / c for c in "abcd"]
        for d in dirs:
            d.mkdir()
        # One after another: run side by side they compete for the two cores and the
        # delays measure the machine, not the schedule.
        return [
            # 40 jobs: the mean delay of a 5 s poller has a spread of ±0.2 s at that count.
            await fixed_poller("A fixed 5 s poller", 40, scale, 100_000, dirs[0]),
            await engine_run("B wan-tui engine", 40, scale, 100_000, dirs[1]),
            await fixed_poller("C fixed poller, limit 60/min", 30, scale, limit_60, dirs[2]),
            await engine_run("D engine, limit 60/min", 30, scale, limit_60, dirs[3]),
        ]


def report(results: list[Result], quick: bool) -> None:
    print(f"machine: {platform.machine()}, {platform.python_implementation()} "
          f"{platform.python_version()}, {platform.system()} {platform.release()}"
          + ("  [--quick: all times ÷10]" if quick else ""))
    print(f"{'scenario':34} {'done':>7} {'retrieves/job':>13} {'delay mean':>10} "
          f"{'delay max':>9} {'429s':>9} {'wall s':>7}")
    for r in results:
        print(r.row())
    a, b = results[0], results[1]
    if a.finished and b.finished:
        ratio = (b.retrieves / b.finished) / (a.retrieves / a.finished)
        print(f"engine/fixed retrieves per job: {ratio:.2f} (target ≤ 0.50); "
              f"delay {sum(b.delays) / len(b.delays):.2f}s vs {sum(a.delays) / len(a.delays):.2f}s")


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui.bench.engine")
    parser.add_argument("--quick", action="store_true", help="everything 10x faster")
    args = parser.parse_args(argv)
    report(asyncio.run(main(args.quick)), args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
