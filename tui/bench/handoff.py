"""How fast windows reach the engine, and how fast a new engine takes over.

    python -m tui.bench.handoff [--cancels 20] [--takeovers 5]

An engine process (`wan-tui engine run`, started by `wan-tui watch --detach`) follows long jobs on
the simulator. For each `wan-tui cancel ID` (a real CLI process) it reports:
- request → engine acted: from the moment the CLI's request row was committed to the
  moment the engine recorded its answer;
- request → other window shows it: until a second window, checking for other processes'
  commits as the dashboard does (every 1/CHANGES_HZ s), reads the cancelled row.
Then it SIGKILLs the engine while a client watches (as every window does: host.keep_engine),
several times, and reports the takeover time (kill → a new engine process, started by the
client, holds the lock and has resumed the jobs: its status is published).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tui.app.app import CHANGES_HZ
from tui.config import load_config
from tui.engine.lock import EngineLock
from tui.jobs import JobRequest, JobState
from tui.session import open_session
from tui.sim.server import SimServer
from tui.sim.state import Faults, SimConfig

MODEL = "wan-2.5-preview-text-to-video"


def env_for(sim: SimServer, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "WAN_TUI_HOME": str(home), "VENICE_BASE_URL": sim.url("venice"),
        "VENICE_API_KEY": "sim-venice-key", "APIXO_BASE_URL": sim.url("apixo"),
        "APIXO_API_KEY": "sim-apixo-key", "ACEDATA_BASE_URL": sim.url("acedata"),
        "ACEDATA_API_TOKEN": "sim-acedata-token",
    })
    return env


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_engine(env: dict[str, str], home: Path) -> int:
    subprocess.run([sys.executable, "-m", "tui.cli", "watch", "--detach"], env=env,
                   check=True, capture_output=True)
    lock = EngineLock(home / "engine.lock")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pid = lock.holder()
        if pid:
            return pid
        time.sleep(0.02)
    log = home / "wan-tui.log"
    raise SystemExit("the background engine did not start: "
                     + (log.read_text()[-2000:] if log.exists() else "no log"))


async def measure(cancels: int, takeovers: int) -> None:
    faults = Faults(retrieve_limit_per_min=100_000, queue_limit_per_min=100_000)
    with tempfile.TemporaryDirectory() as tmp, SimServer.running(
            SimConfig(mean_s=600.0, video_seconds=1.0, faults=faults)) as sim:
        home = Path(tmp) / "home"
        env = env_for(sim, home)
        os.environ.update(env)  # load_config reads WAN_TUI_HOME from the process
        config = load_config(env)
        async with open_session(config, lock=False, role="bench") as client:
            jobs = await client.host.add(
                [JobRequest(model=MODEL, prompt=f"handoff {i}", duration="5s")
                 for i in range(cancels + 1)], [0.25] * (cancels + 1))
            engine_pid = start_engine(env, home)
            while any(job is None or not job.remote_id for job in
                      [await client.store.get(j.id) for j in jobs]):
                await asyncio.sleep(0.1)
            acted, shown, cli_wall = [], [], []
            await client.host.changes()
            for job in jobs[:cancels]:
                t0 = time.time()
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "tui.cli", "cancel", str(job.id), env=env,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                seen = None
                while seen is None:
                    for row in await client.host.changes():
                        if row.id == job.id and row.state == JobState.CANCELLED:
                            seen = time.time()
                    await asyncio.sleep(1 / CHANGES_HZ)
                await proc.wait()
                cli_wall.append(time.time() - t0)
                rows = await client.reader._read(
                    "SELECT created_at, finished_at FROM requests WHERE job_id = ?", (job.id,))
                posted, finished = rows[-1][0], rows[-1][1]
                acted.append(finished - posted)
                shown.append(seen - posted)
            print(f"cancel via the CLI, {cancels} times, engine pid {engine_pid}:")
            for name, values in (("request → engine acted", acted),
                                 ("request → other window shows it", shown),
                                 ("whole CLI command (incl. Python start)", cli_wall)):
                print(f"  {name:40} median {statistics.median(values) * 1000:6.0f} ms"
                      f"   p95 {pct(values, 0.95) * 1000:6.0f} ms")
            times = []
            keeper = asyncio.ensure_future(client.host.keep_engine())
            for _ in range(takeovers):
                while (await client.host.status()).get("pid") != engine_pid:
                    await asyncio.sleep(0.05)  # the engine serves: its status is out
                killed = time.time()
                os.kill(engine_pid, signal.SIGKILL)
                while True:
                    pid = client.host.lock.holder()
                    if pid not in (None, engine_pid) and \
                            (await client.host.status()).get("pid") == pid:
                        break
                    await asyncio.sleep(0.01)
                times.append(time.time() - killed)
                engine_pid = pid
            keeper.cancel()
            print(f"takeover after SIGKILL, {takeovers} times: median "
                  f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
            os.kill(engine_pid, signal.SIGTERM)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cancels", type=int, default=20)
    parser.add_argument("--takeovers", type=int, default=5)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    asyncio.run(measure(args.cancels, args.takeovers))


if __name__ == "__main__":
    main()
