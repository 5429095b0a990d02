"""Web gallery benchmark: the first page with 1 000 finished jobs, the start of a range
request, and the serving process's memory while 20 videos stream at once.

    python -m tui.bench.gallery            # 1 000 jobs, a 128 MiB video, 20 streams
    python -m tui.bench.gallery --quick    # 200 jobs, 32 MiB, 20 streams

A throwaway history holds N finished jobs whose files are real MP4s: eight 2 s 720p clips
from the simulator's encoder, and one long 1080p H.264 file (tui.bench.media's maker) for
the first 20 jobs. `wan-tui serve` runs as its own process, as a user starts it; the client
is httpx on loopback with keep-alive, as a browser's is.

- first page: `GET /` (the page) and `GET /api/jobs?limit=60` (the first 60 cards, newest
  first, with the total), one after the other, 40 rounds after one warm-up; the very first
  request after start-up is reported apart (the store's first read).
- posters: the first page's 60 posters, each decoded from its video the first time
  (cold) and read from <home>/thumbs after (warm).
- range start: `Range: bytes=X-` at 60 random offsets of the long video, timed to the
  response's headers and first body chunk.
- memory: the server's resident set (/proc/PID/status VmRSS), sampled every 50 ms, before
  and while 20 clients each read the whole long video at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tui.bench.media import make_big_video, pct

MIB = 1 << 20
STREAMS = 20
ROUNDS = 40
RANGES = 60
PAGE = 60


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _clips(folder: Path) -> list[Path]:
    from tui.sim.video import render_clip

    paths = []
    for n in range(8):
        path = folder / f"clip-{n}.mp4"
        render_clip(path, prompt=f"gallery bench clip {n}", job_id=f"bench-{n}", seconds=2.0,
                    width=1280, height=720, fps=12)
        paths.append(path)
    return paths


async def _seed(db: Path, count: int, clips: list[Path], big: Path) -> None:
    from tui.jobs import Job, JobRequest, JobState
    from tui.media.probe import probe
    from tui.store import open_store

    facts = {path: probe(path) for path in [*clips, big]}
    now = time.time() - 60
    jobs = []
    for n in range(count):
        # the newest 20 jobs (the first page) point at the long video: those are streamed
        path = big if n >= count - STREAMS else clips[n % len(clips)]
        jobs.append(Job(
            0, JobRequest(model="wan-2.5-preview-text-to-video", duration="5s", seed=n,
                          prompt=f"take {n} of a red fox crossing fresh snow at dawn"),
            JobState.DONE, now - (count - n) * 60, now - (count - n) * 60 + 300,
            remote_id=f"b-{n}", file=str(path), bytes=path.stat().st_size,
            video=facts[path], cost_usd=0.31, finished_at=now - (count - n) * 60 + 300,
            batch_id=1))
    store = await open_store(db)
    try:
        await store.bulk_insert_for_benchmark(jobs)
    finally:
        await store.close()


def _serve(home: Path) -> tuple[subprocess.Popen, str, str]:
    env = {**os.environ, "WAN_TUI_HOME": str(home)}
    process = subprocess.Popen([sys.executable, "-m", "tui.cli", "serve", "--port", "0"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    assert process.stdout is not None
    url = process.stdout.readline().split()[-1]
    base, token = url.split("/?token=")
    return process, base, token


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _summary(values: list[float]) -> dict[str, float]:
    return {"median_ms": _ms(statistics.median(values)), "p95_ms": _ms(pct(values, 0.95)),
            "max_ms": _ms(max(values))}


def bench(count: int, big_mib: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wan-tui-gallery-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        clips = _clips(Path(tmp))
        big = Path(tmp) / "long.mp4"
        made = make_big_video(big, big_mib * MIB)
        asyncio.run(_seed(home / "history.db", count, clips, big))
        process, base, token = _serve(home)
        try:
            return _measure(process, base, token, count, made)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(20)


def _measure(process: subprocess.Popen, base: str, token: str, count: int,
             made: dict[str, Any]) -> dict[str, Any]:
    cookie = {"cookie": f"wan_tui_token_{base.rsplit(':', 1)[1]}={token}"}
    out: dict[str, Any] = {"jobs": count, "video_mib": round(made["bytes"] / MIB)}
    with httpx.Client(base_url=base, headers=cookie, timeout=60) as client:
        started = time.perf_counter()
        first = client.get("/api/jobs", params={"limit": PAGE})
        out["first_request_ms"] = _ms(time.perf_counter() - started)
        assert first.status_code == 200 and first.json()["total"] == count
        html, cards, both = [], [], []
        for _ in range(ROUNDS + 1):
            t0 = time.perf_counter()
            page = client.get("/")
            t1 = time.perf_counter()
            jobs = client.get("/api/jobs", params={"limit": PAGE})
            t2 = time.perf_counter()
            assert page.status_code == jobs.status_code == 200
            assert len(jobs.json()["jobs"]) == PAGE
            html.append(t1 - t0)
            cards.append(t2 - t1)
            both.append(t2 - t0)
        out["page_html"] = _summary(html[1:])
        out["page_cards"] = _summary(cards[1:])
        out["first_page"] = _summary(both[1:])
        ids = [j["id"] for j in jobs.json()["jobs"]]
        for label in ("posters_cold", "posters_warm"):
            times = []
            for job_id in ids:
                t0 = time.perf_counter()
                poster = client.get(f"/poster/{job_id}.png")
                times.append(time.perf_counter() - t0)
                assert poster.status_code == 200
            out[label] = _summary(times)
        size = int(client.head(f"/video/{ids[0]}").headers["content-length"])
        rng = random.Random(7)
        starts = []
        for _ in range(RANGES + 1):
            offset = rng.randrange(0, size - 1)
            t0 = time.perf_counter()
            with client.stream("GET", f"/video/{ids[0]}",
                               headers={"range": f"bytes={offset}-"}) as answer:
                assert answer.status_code == 206
                next(answer.iter_raw())
                starts.append(time.perf_counter() - t0)
        out["range_start"] = _summary(starts[1:])
    out["memory"] = _streams(process.pid, base, cookie, ids[:STREAMS], size)
    return out


def _streams(pid: int, base: str, cookie: dict[str, str], ids: list[int], size: int
             ) -> dict[str, Any]:
    before = _rss_mb(pid)
    samples: list[float] = []
    done = threading.Event()
    errors: list[str] = []
    read = [0] * len(ids)

    def sample() -> None:
        while not done.is_set():
            samples.append(_rss_mb(pid))
            time.sleep(0.05)

    def stream(n: int, job_id: int) -> None:
        try:
            with httpx.Client(base_url=base, headers=cookie, timeout=120) as client, \
                    client.stream("GET", f"/video/{job_id}") as answer:
                for chunk in answer.iter_raw(256 * 1024):
                    read[n] += len(chunk)
        except httpx.HTTPError as exc:
            errors.append(str(exc))

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    readers = [threading.Thread(target=stream, args=(n, job_id)) for n, job_id in enumerate(ids)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    took = time.perf_counter() - started
    done.set()
    sampler.join()
    after = _rss_mb(pid)
    assert not errors and all(r == size for r in read), (errors, read, size)
    return {"streams": len(ids), "rss_before_mb": round(before, 1),
            "rss_peak_mb": round(max(samples), 1), "rss_after_mb": round(after, 1),
            "growth_mb": round(max(samples) - before, 1), "samples": len(samples),
            "streamed_mib": round(sum(read) / MIB), "seconds": round(took, 1),
            "mib_per_s": round(sum(read) / MIB / took)}


def report(out: dict[str, Any]) -> str:
    rows = [
        ("first page: `GET /` + `GET /api/jobs?limit=60`", out["first_page"]),
        ("… the page alone", out["page_html"]),
        ("… the first 60 cards alone", out["page_cards"]),
        ("a poster, cold (decoded from the video)", out["posters_cold"]),
        ("a poster, warm (<home>/thumbs)", out["posters_warm"]),
        ("range request: to headers and first bytes", out["range_start"]),
    ]
    lines = [f"{out['jobs']} finished jobs; first request after start-up "
             f"{out['first_request_ms']} ms",
             "", "| what | median | p95 | max |", "|---|---|---|---|"]
    lines += [f"| {label} | {s['median_ms']} ms | {s['p95_ms']} ms | {s['max_ms']} ms |"
              for label, s in rows]
    m = out["memory"]
    lines += ["", f"memory of `wan-tui serve` while {m['streams']} clients each read the whole "
              f"{out['video_mib']} MiB video at once: RSS {m['rss_before_mb']} MB before, "
              f"{m['rss_peak_mb']} MB at most during ({m['samples']} samples), "
              f"{m['rss_after_mb']} MB after; {m['streamed_mib']} MiB in {m['seconds']} s "
              f"({m['mib_per_s']} MiB/s)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui.bench.gallery")
    parser.add_argument("--quick", action="store_true", help="200 jobs, a 32 MiB video")
    parser.add_argument("--jobs", type=int, help="finished jobs in the history")
    args = parser.parse_args(argv)
    count = args.jobs or (200 if args.quick else 1000)
    out = bench(count, 32 if args.quick else 128)
    print(report(out))
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
