"""Recipe benchmark: what writing the recipe into a finished video adds to its download.

    python -m tui.bench.recipe            # a 1 GiB file, 3 runs
    python -m tui.bench.recipe --quick    # a 256 MiB file

A 1080p H.264 MP4 of the asked size is made as tui.bench.media makes it (under the system
temp folder, deleted after). Each run times, on that file: the check every download already
gets (boxes + tui.media.probe.probe), then what the recipe adds (tui.media.recipe.tag_copy:
the remux with the tags, its fsync and its own probe; then the sha256 of the tagged copy),
with the peak memory of each step (VmHWM, reset before it). Runs in this process.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tui.bench.media import GIB, _reset_peak, _status_mb, make_big_video

RECIPE = {"format": 1, "prompt": "a heron lands on a misty pond at dawn", "provider": "venice",
          "model": "wan-2.5-preview-text-to-video", "params": {"duration": "5s"},
          "seed": None, "remote_id": "bench", "cost_usd": 0.31, "wan_tui_version": "bench"}


def _timed(step, *args) -> tuple[Any, float, float]:
    _reset_peak()
    started = time.perf_counter()
    result = step(*args)
    return result, time.perf_counter() - started, _status_mb("VmHWM")


def bench(size_bytes: int, runs: int) -> dict[str, Any]:
    from tui.engine.files import check_mp4, sha256_of
    from tui.media.probe import probe
    from tui.media.recipe import tag_copy, tags_of

    def check(path: Path):
        check_mp4(path)
        return probe(path)

    out: dict[str, Any] = {"runs": []}
    with tempfile.TemporaryDirectory(prefix="wan-tui-recipe-bench-") as tmp:
        path = Path(tmp) / "big.mp4"
        out["made"] = make_big_video(path, size_bytes)
        tagged = Path(tmp) / "big.mp4.tagged"
        for _ in range(runs):
            facts, check_s, check_mb = _timed(check, path)
            _, tag_s, tag_mb = _timed(tag_copy, path, tagged, tags_of(RECIPE), facts)
            _, sha_s, sha_mb = _timed(sha256_of, tagged)
            out["runs"].append({"check_s": check_s, "check_mb": check_mb, "tag_s": tag_s,
                                "tag_mb": tag_mb, "sha_s": sha_s, "sha_mb": sha_mb,
                                "tagged_bytes": tagged.stat().st_size})
            tagged.unlink()
    return out


def report(result: dict[str, Any]) -> str:
    made, runs = result["made"], result["runs"]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    grew = runs[0]["tagged_bytes"] - made["bytes"]
    lines = [
        f"file: {made['bytes'] / 2**20:.0f} MiB, {made['seconds']} s of 1080p H.264 "
        f"(tagged copy {grew:+d} bytes)",
        f"median of {len(runs)} runs (wall s; the process's peak RSS, MB):",
        f"  the check every download gets (boxes + probe): {med('check_s'):6.2f} s "
        f"{med('check_mb'):6.0f} MB",
        f"  recipe: remux with tags + fsync + probe:       {med('tag_s'):6.2f} s "
        f"{med('tag_mb'):6.0f} MB",
        f"  recipe: sha256 of the tagged copy:              {med('sha_s'):6.2f} s "
        f"{med('sha_mb'):6.0f} MB",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui.bench.recipe")
    parser.add_argument("--quick", action="store_true", help="a 256 MiB file")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(report(bench(GIB // 4 if args.quick else GIB, args.runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
