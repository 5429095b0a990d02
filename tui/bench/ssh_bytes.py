"""Bandwidth benchmark: bytes per second the dashboard writes to a real terminal.

    python -m tui.bench.ssh_bytes                  # 160x45 and 80x24, 40 active jobs
    python -m tui.bench.ssh_bytes --sizes 160x45 --jobs 40 --window 20 --zoom

Over SSH every byte the dashboard writes to its terminal crosses the link, so this counts
exactly those: `wan-tui demo` (the built-in simulator, jobs long enough to stay active) runs
in a pseudo-terminal of the given size, and the bytes read from the pty's master side are
counted over a steady window after a warm-up (the first paint and the submits are not
part of a long watch). When htop is installed it runs in the same kind of pty for the
same window and its figure is printed beside ours; the script works without it.

What moves on screen during the window: every active row's progress bar, ETA and elapsed
time, the detail pane's clocks, and the status line; no key is pressed (with --zoom, `z`
first hides the detail pane, so at 160x45 all 40 active jobs have a row on screen).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import sys
import termios
import time

TERM_ENV = {"TERM": "xterm-256color", "COLORTERM": "truecolor", "LANG": "C.UTF-8"}


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _drain(fd: int, until: float, counts: list[tuple[float, int]]) -> bool:
    """Read everything the child writes until `until`; False when the pty closed."""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return True
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        counts.append((time.monotonic(), len(data)))


def measure(argv: list[str], cols: int, rows: int, warmup: float, window: float,
            quit_keys: bytes = b"q", keys: bytes = b"") -> dict[str, float]:
    """Run `argv` in a cols x rows pty; bytes/s over [warmup, warmup + window]."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session leader with the pty as its terminal
        env = {**os.environ, **TERM_ENV, "COLUMNS": str(cols), "LINES": str(rows)}
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    _set_size(fd, cols, rows)
    os.kill(pid, signal.SIGWINCH)
    counts: list[tuple[float, int]] = []
    start = time.monotonic()
    alive = _drain(fd, start + warmup, counts)
    if alive and keys:  # e.g. `z`: the table alone, so every active job has a row on screen
        os.write(fd, keys)
        alive = _drain(fd, time.monotonic() + 2.0, counts)
    begin = time.monotonic()
    if alive:
        alive = _drain(fd, begin + window, counts)
    end = time.monotonic()
    inside = [n for t, n in counts if begin <= t < end]
    # Leave as a user would (the demo cleans its folder up), then make sure.
    if alive:
        try:
            os.write(fd, quit_keys)
            _drain(fd, time.monotonic() + 8, [])
        except OSError:
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            continue
        break
    try:
        os.close(fd)
    except OSError:
        pass
    total = sum(inside)
    return {"bytes": total, "seconds": end - begin, "per_s": total / (end - begin),
            "writes": len(inside), "first_paint_bytes": sum(n for t, n in counts if t < begin)}


def demo_argv(jobs: int, mean: float) -> list[str]:
    return [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())",
            "demo", "--jobs", str(jobs), "--mean", str(mean)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="160x45,80x24", help="terminal sizes, COLSxROWS")
    parser.add_argument("--jobs", type=int, default=40, help="active demo jobs")
    parser.add_argument("--mean", type=float, default=1800.0,
                        help="simulated run time, seconds (long: every job stays active)")
    parser.add_argument("--warmup", type=float, default=12.0, help="seconds before counting")
    parser.add_argument("--window", type=float, default=20.0, help="seconds counted")
    parser.add_argument("--zoom", action="store_true",
                        help="also measure with the table alone (z): every active job on screen")
    args = parser.parse_args(argv)
    htop = shutil.which("htop")
    print(f"{'terminal':<9} {'program':<22} {'bytes/s':>9} {'writes/s':>9}")
    for size in args.sizes.split(","):
        cols, rows = (int(n) for n in size.lower().split("x"))
        runs = [("", f"wan-tui ({args.jobs} active)")]
        if args.zoom:
            runs.append(("z", "  … table alone (z)"))
        for keys, label in runs:
            ours = measure(demo_argv(args.jobs, args.mean), cols, rows, args.warmup,
                           args.window, keys=keys.encode())
            print(f"{size:<9} {label:<22} {ours['per_s'] / 1024:>7.2f}KB"
                  f" {ours['writes'] / ours['seconds']:>9.1f}", flush=True)
        if htop:
            theirs = measure([htop], cols, rows, 3.0, args.window, quit_keys=b"q")
            print(f"{size:<9} {'htop (default delay)':<22} {theirs['per_s'] / 1024:>7.2f}KB"
                  f" {theirs['writes'] / theirs['seconds']:>9.1f}", flush=True)
    if not htop:
        print("(htop is not installed: no comparison figure)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
