"""Media benchmark: verifying a 1 GB video, and what thumbnails cost j/k in the dashboard.

    python -m tui.bench.media            # a 1 GiB file, 120 j presses per variant
    python -m tui.bench.media --quick    # a 256 MiB file, 40 presses

Verification: a 1080p H.264 MP4 of the asked size is made under the system temp folder
(a 2 s segment with film grain -- about 40 Mb/s -- encoded once and remuxed end to end
with 1 s GOPs, so the file is long, seekable and decodes everywhere) and deleted after.
`tui.media.probe.probe` (what every download goes through: open, streams, first frame,
three sampled frames, the last GOP) then runs in a fresh child process, three times; the
figures are its wall time and the child's peak RSS, next to a child that only imports.

Thumbnails: the dashboard (bench.dashboard's instrumented app, headless) over a history
of finished jobs whose files are real 720p clips. j is pressed with 100 ms between
presses (past the detail pane's 80 ms debounce, so every row's picture is wanted), and
timed from the key to the first frame that shows the cursor moved -- pictures off, on with
a cold cache (each picture decoded), on with a warm cache (read from <home>/thumbs). The
time from the cursor resting to the picture on screen is measured apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GIB = 1 << 30
VARIANTS = ("off", "cold", "warm")
SEGMENT_S = 2
FPS = 24


# ---------------------------------------------------------------- making a big file


def make_big_video(path: Path, target_bytes: int) -> dict[str, Any]:
    import av
    from PIL import Image

    started = time.perf_counter()
    segment = path.with_name(path.name + ".segment.mp4")
    rng = random.Random(1)
    with av.open(str(segment), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18", "g": str(FPS),
                          "keyint_min": str(FPS)}
        bars = Image.new("RGB", (1920, 1080), (40, 90, 160))
        for _ in range(SEGMENT_S * FPS):
            grain = Image.frombytes("RGB", (480, 270), rng.randbytes(480 * 270 * 3))
            frame = bars.copy()
            frame.paste(grain.resize((960, 540), Image.Resampling.NEAREST), (480, 270))
            out.mux(stream.encode(av.VideoFrame.from_image(frame)))
        out.mux(stream.encode(None))
    with av.open(str(segment)) as src:
        packets = [(p.pts or 0, p.dts or 0, p.is_keyframe, bytes(p))
                   for p in src.demux(video=0) if p.size]
        template = src.streams.video[0]
        time_base = template.time_base
        assert time_base is not None
        span = int(SEGMENT_S / time_base)
        seg_bytes = sum(len(p[3]) for p in packets)
        reps = max(1, -(-target_bytes // seg_bytes))
        with av.open(str(path), "w", format="mp4") as out:
            stream = out.add_stream_from_template(template)
            for rep in range(reps):
                for pts, dts, key, data in packets:
                    packet = av.Packet(data)
                    packet.pts, packet.dts = pts + rep * span, dts + rep * span
                    packet.time_base = time_base
                    packet.is_keyframe = key
                    packet.stream = stream
                    out.mux(packet)
    segment.unlink()
    return {"bytes": path.stat().st_size, "seconds": reps * SEGMENT_S,
            "make_s": time.perf_counter() - started}


# ---------------------------------------------------------------- the child: one probe


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Start the kernel's peak-RSS mark (VmHWM) afresh: imports peak higher than the check."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def child_probe(path: str, probe_it: bool) -> dict[str, Any]:
    started = time.perf_counter()
    import av  # noqa: F401  # loaded before the baseline: its libraries are not the check's

    from tui.engine.files import check_mp4
    from tui.media.probe import probe

    out: dict[str, Any] = {"import_s": time.perf_counter() - started,
                           "rss_before_mb": _status_mb("VmRSS")}
    _reset_peak()
    if probe_it:
        t0 = time.perf_counter()
        check_mp4(Path(path))
        out["boxes_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        facts = probe(Path(path))
        out["probe_s"] = time.perf_counter() - t1
        out["facts"] = facts.to_dict()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["check_peak_mb"] = _status_mb("VmHWM")  # since the reset: the check's own peak
    return out


def run_child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "tui.bench.media", "--child", *args],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_verify(size_bytes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wan-tui-media-bench-") as tmp:
        path = Path(tmp) / "big.mp4"
        made = make_big_video(path, size_bytes)
        base = run_child([str(path), "import-only"])
        runs = [run_child([str(path), "probe"]) for _ in range(3)]
    return {"made": made, "baseline": base, "runs": runs}


# ---------------------------------------------------------------- j/k with thumbnails


async def bench_keys(presses: int, history: int) -> dict[str, Any]:
    from tui.bench import dashboard as dash

    with tempfile.TemporaryDirectory(prefix="wan-tui-media-keys-") as tmp:
        home = Path(tmp)
        clips = _clips(home / "clips", 12)
        env = {"WAN_TUI_HOME": str(home), "VENICE_API_KEY": "k",
               "VENICE_BASE_URL": "http://127.0.0.1:9/venice"}
        os.environ.update(env)
        from tui.config import load_config

        config = load_config(env)
        await _seed(config, history, clips)
        out: dict[str, Any] = {"history": history, "presses": presses}
        # Rounds alternate the variants, so a burst of load on this shared machine lands on
        # all of them alike rather than on one.
        rounds = 3
        for variant in VARIANTS:
            out[variant] = {"j_ms": [], "picture_ms": [], "timeouts": 0}
        for _ in range(rounds):
            for variant in VARIANTS:
                got = await _keys_once(dash, config, variant, presses // rounds)
                for key in ("j_ms", "picture_ms"):
                    out[variant][key] += got[key]
                out[variant]["timeouts"] += got["timeouts"]
    return out


def _clips(folder: Path, count: int) -> list[Path]:
    from tui.sim.video import render_clip

    paths = []
    for n in range(count):
        path = folder / f"clip-{n}.mp4"
        render_clip(path, prompt=f"bench clip {n}", job_id=f"bench-{n}", seconds=2.0,
                    width=1280, height=720, fps=12)
        paths.append(path)
    return paths


async def _seed(config: Any, count: int, clips: list[Path]) -> None:
    from tui.jobs import Job, JobRequest, JobState, VideoFacts
    from tui.store import open_store

    facts = VideoFacts(width=1280, height=720, duration_s=2.0, fps=12.0, video_codec="h264")
    now = time.time() - 60
    jobs = [Job(0, JobRequest(model="wan-2.5-preview-text-to-video", prompt=f"bench job {n}",
                              duration="2s", resolution="720p"),
                JobState.DONE, now - (count - n) * 60, now - (count - n) * 60 + 300,
                remote_id=f"b-{n}", file=str(clips[n % len(clips)]), bytes=300_000,
                video=facts, finished_at=now)
            for n in range(count)]
    store = await open_store(config.history)
    try:
        await store.bulk_insert_for_benchmark(jobs)
    finally:
        await store.close()


async def _keys_once(dash: Any, config: Any, variant: str, presses: int) -> dict[str, Any]:
    from tui.app.facade import Facade
    from tui.session import open_session

    thumbs = config.db_path.parent / "thumbs"
    if variant == "cold" and thumbs.exists():
        for png in thumbs.glob("*.png"):
            png.unlink()
    probe = dash.Probe()
    app_class = dash.bench_app_class(probe, (160, 45))
    async with open_session(config, lock=False) as session:
        app = app_class(Facade(session), start_engine=False)
        async with app.run_test(size=(160, 45)) as pilot:
            for _ in range(200):
                await pilot.pause(0.05)
                if app.table.row_count:
                    break
            if variant == "off":
                app.detail.thumbnails = None
            app.table.focus()
            drive = dash.Driver(app, probe, gap_s=0.1)
            table = app.table
            keys: list[float] = []
            for _ in range(presses):
                at = dash.position(table)
                keys.append(await drive.press(
                    "j", lambda at=at: dash.position(table) == at + 1
                    and dash.cursor_visible(table)))
            pictures: list[float] = []
            if variant != "off":
                for _ in range(min(10, presses)):
                    at = dash.position(table)
                    started = time.perf_counter()
                    await drive.press("j", lambda at=at: dash.position(table) == at + 1,
                                      gap_s=0)
                    target = table.current_id
                    shown = probe.expect(lambda target=target: app.detail.picture_of == target)
                    pictures.append((await asyncio.wait_for(shown, 15) - started) * 1000)
    return {"j_ms": keys, "picture_ms": pictures, "timeouts": drive.timeouts}


# ---------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    values = sorted(v for v in values if v == v)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def report(verify: dict[str, Any], keys: dict[str, Any]) -> str:
    made, base, runs = verify["made"], verify["baseline"], verify["runs"]
    probe_s = [r["probe_s"] for r in runs]
    rss = [r["peak_rss_mb"] for r in runs]
    facts = runs[0]["facts"]
    grew = max(r["check_peak_mb"] - r["rss_before_mb"] for r in runs)
    check_peak = max(r["check_peak_mb"] for r in runs)
    lines = [
        f"verification of {made['bytes'] / GIB:.2f} GiB ({facts['width']}x{facts['height']}, "
        f"{facts['duration_s']:.0f} s, {facts['bitrate'] / 1e6:.0f} Mb/s, 1 s GOPs; made in "
        f"{made['make_s']:.0f} s):",
        f"  box check {statistics.median(r['boxes_s'] for r in runs) * 1000:.0f} ms, decode check "
        f"median {statistics.median(probe_s):.2f} s (runs: "
        + ", ".join(f"{s:.2f}" for s in probe_s) + ")",
        f"  RSS during the check peaks at {check_peak:.0f} MB, {grew:.0f} MB over the process "
        f"before it (whole process, imports included: {max(rss):.0f} MB; a process that only "
        f"imports: {base['peak_rss_mb']:.0f} MB)",
        f"j with pictures ({keys['history']} finished 720p jobs, {keys['presses']} presses, "
        "100 ms apart), key to frame:",
    ]
    for variant, label in (("off", "pictures off"), ("cold", "pictures, cold cache"),
                           ("warm", "pictures, warm cache")):
        j = keys[variant]["j_ms"]
        line = (f"  {label:22} p50 {pct(j, 0.5):5.1f} ms  p95 {pct(j, 0.95):5.1f} ms  "
                f"max {max(j):5.1f} ms")
        pictures = keys[variant]["picture_ms"]
        if pictures:
            line += f"   picture on screen p50 {pct(pictures, 0.5):.0f} ms"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        print(json.dumps(child_probe(argv[1], argv[2] == "probe")))
        return 0
    parser = argparse.ArgumentParser(prog="python -m tui.bench.media")
    parser.add_argument("--quick", action="store_true", help="256 MiB, fewer presses")
    args = parser.parse_args(argv)
    size = GIB // 4 if args.quick else GIB
    presses = 40 if args.quick else 120
    verify = bench_verify(size)
    keys = asyncio.run(bench_keys(presses, history=max(200, presses + 40)))
    print(report(verify, keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
