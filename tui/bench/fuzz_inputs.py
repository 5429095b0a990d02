"""Fuzzing wan-tui's input against the simulator: tracebacks, paid calls, hangs.

    python -m tui.bench.fuzz_inputs                  # 3 000 generated cases, a few minutes
    python -m tui.bench.fuzz_inputs --cases 300      # a quick look
    python -m tui.bench.fuzz_inputs --seed 7         # another draw of the same kinds

Each case is one `wan-tui` command line, run in this process through `tui.cli.main` (and a
few dozen as real subprocesses with standard input closed, `<&-`), against one simulator
whose queue endpoint counts every paid call. The cases:

- batch files: a valid request with 1-3 fields replaced by hostile values (NaN, 1e999, 5.9,
  huge integers, lone surrogates, NUL, deep nesting, wrong types, unknown keys), or its
  JSON text cut, garbled or not UTF-8; mixed with valid lines; ~10 % entirely valid;
- special inputs: /dev/zero, a FIFO nobody writes to, a directory, a missing file, a file
  past the size limit, `-` with standard input closed or holding garbage;
- arguments: `submit`/`quote` with hostile flag values, job commands with hostile ids,
  confirmation prompts without a terminal.

Counted per case: a traceback (an exception escaping `main`, or main's own "unexpected
error" line, which means a bug), paid calls made by a command that refused its input (exit
status 2, wan-tui's "bad input": it must cost nothing and record nothing; a background
engine a command hands its jobs to is waited for, so its calls count against that command),
and hangs (no answer within `--case-timeout` seconds; a FIFO read on purpose with
`batch - < fifo` is the one documented wait and is not generated). Exit status 1 if any
of the three is not zero.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tui.sim.server import SimServer
from tui.sim.state import Faults, SimConfig

T2V = "wan-2.5-preview-text-to-video"
VALID = {"model": T2V, "prompt": "a red fox runs through snow", "duration": "5s"}
FIELDS = ["model", "prompt", "duration", "resolution", "aspect_ratio", "negative_prompt",
          "audio", "seed", "image_url", "provider", "options", "shot_type", "x"]
# Hostile values as JSON text, so NaN, 1e999 and lone surrogates reach the parser as a file
# would hold them.
HOSTILE_JSON = [
    "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "5.9", "0.5", "-5", "0", "5.0",
    "9" * 30, "9" * 5000, "-" + "9" * 400, "true", "false", "null", '""', '" "',
    '"\\ud800"', '"a\\u0000b"', '"5.9s"', '"99999999999999999999s"', '"5"', '"abc"',
    "[]", "{}", '{"a": NaN}', "[1e999]", "[" * 60 + "]" * 60, '{"a":' * 40 + "1" + "}" * 40,
    '"' + "x" * 200_000 + '"', '"/dev/zero"', '"/nonexistent.png"', '"data:image/png;base64,"',
    '"https://example.invalid/x.png"', '["a", {"b": [NaN]}]', "1.7976931348623157e308",
    '"\\u202e\\u001b[31m"', '"16:9"', '"720p"', '"venice"', '"acme"',
]
HOSTILE_ARGS = [
    "nan", "inf", "-inf", "1e999", "5.9", "-1", "0", "", " ", "9" * 5000, "\n", "\x1b[2J",
    "5s", "10s", "abc", "\udcff", "--", "-o", "k=NaN", "k=Infinity", "k=" + "[" * 2000,
    "shot_type=multi", "=v", "k=", "720p", "16:9", T2V, "/dev/zero", "x" * 3000,
]
FLAGS = ["--model", "--prompt", "--duration", "--resolution", "--aspect-ratio", "--seed",
         "--negative-prompt", "--image", "--option", "--max-cost", "--audio", "--no-audio",
         "--provider", "--wait"]


@dataclass
class Case:
    kind: str
    argv: list[str]
    stdin: bytes | None = None  # None: standard input closed (sys.stdin is None)
    subprocess: bool = False


@dataclass
class Tally:
    cases: Counter = field(default_factory=Counter)
    exits: Counter = field(default_factory=Counter)
    tracebacks: list[str] = field(default_factory=list)
    paid_on_refused: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    paid_accepted: int = 0


class Hang(BaseException):
    """Raised by the alarm: a case took longer than --case-timeout."""


def _mutated_line(rng: random.Random) -> str:
    data = dict(VALID)
    text_parts: dict[str, str] = {}
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        name = rng.choice(FIELDS)
        if roll < 0.15:
            data.pop(rng.choice(["model", "prompt"]), None)
        else:
            text_parts[name] = rng.choice(HOSTILE_JSON)
            data.pop(name, None)
    body = json.dumps(data)[:-1]
    for name, value in text_parts.items():
        body += f', "{name}": {value}'
    body += "}"
    roll = rng.random()
    if roll < 0.08:
        body = body[: rng.randint(0, len(body))]  # cut short
    elif roll < 0.14:
        at = rng.randint(0, len(body))
        body = body[:at] + rng.choice(["\x00", "}", "]]]", "\\", '"', "\udcff"]) + body[at:]
    elif roll < 0.18:
        body = "[" + body + "]"
    return body


def _batch_bytes(rng: random.Random) -> bytes:
    lines = []
    all_valid = rng.random() < 0.1
    for _ in range(rng.randint(1, 4)):
        if all_valid or rng.random() < 0.4:
            lines.append(json.dumps({**VALID, "prompt": f"fox {rng.randint(0, 10**6)}"}))
        else:
            lines.append(_mutated_line(rng))
    if not all_valid and all(line.startswith('{"model"') and "fox" in line for line in lines):
        lines.append(_mutated_line(rng))
    if rng.random() < 0.1:
        lines.insert(rng.randint(0, len(lines)), rng.choice(["# comment", "", "   "]))
    data = "\n".join(lines).encode("utf-8", "surrogateescape")
    if rng.random() < 0.03:
        data += b"\n\xff\xfe not utf-8 \xc3\x28"
    return data


def _arg_case(rng: random.Random) -> Case:
    command = rng.choice(["submit", "submit", "quote"])
    argv = [command]
    if rng.random() < 0.9:
        argv += ["--model", rng.choice([T2V, T2V, rng.choice(HOSTILE_ARGS)])]
    if command == "submit" and rng.random() < 0.9:
        argv += ["--prompt", rng.choice(["a fox", rng.choice(HOSTILE_ARGS)])]
    for _ in range(rng.randint(1, 4)):
        flag = rng.choice(FLAGS)
        if command == "quote" and flag in ("--prompt", "--seed", "--negative-prompt",
                                           "--image", "--max-cost", "--wait"):
            continue
        argv.append(flag)
        if flag not in ("--audio", "--no-audio", "--wait"):
            argv.append(rng.choice(HOSTILE_ARGS))
    yes = command == "submit" and rng.random() < 0.8
    if yes:
        argv.append("--yes")
    return Case("arguments", argv, stdin=None)


def _job_case(rng: random.Random) -> Case:
    command = rng.choice(["show", "cancel", "resolve", "list", "delete", "requeue"])
    argv = [command]
    if command != "list":
        argv.append(rng.choice(["1", "0", "-1", "1e3", "9" * 40, "abc", "", "2"]))
    if command == "resolve":
        argv += rng.sample(["--charged", "--not-charged", "--remote-id", "x y"], rng.randint(0, 2))
    if command == "list":
        argv += rng.choice([["--limit", "-1"], ["--state", "bogus"], ["-q", '"*'], ["--limit",
                            "9" * 30], ["--json"]])
    return Case("job commands", argv, stdin=None)


def generate(rng: random.Random, count: int, work: Path) -> list[Case]:
    fifo = work / "nobody-writes.fifo"
    os.mkfifo(fifo)
    big = work / "big.jsonl"
    with big.open("wb") as fh:
        line = (json.dumps(VALID) + "\n").encode()
        fh.write(line * (65 * 2**20 // len(line) + 1))
    cases = [
        Case("special files", ["batch", "/dev/zero", "--yes"]),
        Case("special files", ["batch", str(fifo), "--yes"]),
        Case("special files", ["batch", str(work), "--yes"]),
        Case("special files", ["batch", str(work / "missing.jsonl"), "--yes"]),
        Case("special files", ["batch", str(big), "--yes"]),
        Case("special files", ["batch", "-", "--yes"], stdin=None),
        Case("special files", ["batch", "-", "--yes"], stdin=b"\x00" * 1000),
        Case("special files", ["batch", "-", "--yes"], stdin=b"[" * 1_000_000),
    ]
    for i in range(count - len(cases)):
        roll = rng.random()
        if roll < 0.6:
            path = work / f"batch-{i}.jsonl"
            path.write_bytes(_batch_bytes(rng))
            yes = rng.random() < 0.9
            cases.append(Case("batch files", ["batch", str(path), *(["--yes"] if yes else [])]))
        elif roll < 0.9:
            cases.append(_arg_case(rng))
        else:
            cases.append(_job_case(rng))
    # A few as the user's shell would run them, standard input closed: `wan-tui ... <&-`.
    for case in rng.sample(cases, min(24, len(cases))):
        if case.argv[0] in ("batch", "submit"):
            cases.append(Case("subprocess <&-", [a for a in case.argv if a != "--yes"],
                              subprocess=True))
    return cases


def run_in_process(case: Case, timeout: float) -> tuple[int | None, str]:
    from tui.cli import main

    old_stdin = sys.stdin
    sys.stdin = None if case.stdin is None else io.TextIOWrapper(io.BytesIO(case.stdin))
    err = io.StringIO()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(case.argv)
    except Hang:
        return None, "hang"
    except BaseException as exc:  # noqa: BLE001 -- escaping main is exactly what we count
        return -1, f"escaped main: {type(exc).__name__}: {exc}"[:300]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdin = old_stdin
    return code, err.getvalue()


def run_subprocess(case: Case, timeout: float) -> tuple[int | None, str]:
    try:
        proc = subprocess.run(["sh", "-c", 'exec "$0" -m tui.cli "$@" <&-', sys.executable,
                               *case.argv], capture_output=True, text=True, timeout=timeout,
                              errors="replace")
    except subprocess.TimeoutExpired:
        return None, "hang"
    return proc.returncode, proc.stderr


def recorded_jobs(db: Path) -> int:
    """Jobs in the history: a refused command must not have recorded any (recorded jobs
    are what an engine submits, now or later)."""
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])


def engine_idle(db: Path, timeout: float) -> bool:
    """Wait for a background engine a case handed its jobs to, so that the paid calls it
    makes are counted against that case and not the next one."""
    from tui.engine.lock import EngineLock

    lock = EngineLock(db.with_name("engine.lock"))
    deadline = time.monotonic() + timeout
    while lock.holder() is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--case-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)

    def alarm(signum, frame):
        raise Hang()

    signal.signal(signal.SIGALRM, alarm)
    rng = random.Random(args.seed)
    tally = Tally()
    started = time.monotonic()
    faults = Faults(retrieve_limit_per_min=100_000, queue_limit_per_min=100_000,
                    failure_block_threshold=0)
    with tempfile.TemporaryDirectory(prefix="wan-tui-fuzz-") as tmp, SimServer.running(
            SimConfig(mean_s=0.3, video_seconds=0.5, seed=args.seed, faults=faults)) as sim:
        work = Path(tmp)
        os.environ.update({
            "WAN_TUI_HOME": str(work / "home"), "VENICE_BASE_URL": sim.url("venice"),
            "VENICE_API_KEY": "sim-venice-key", "WAN_TUI_TIME_SCALE": "0.02",
        })
        cases = generate(rng, args.cases, work)
        db = work / "home" / "history.db"
        for number, case in enumerate(cases, start=1):
            paid_before, jobs_before = len(sim.state.queue_calls), recorded_jobs(db)
            runner = run_subprocess if case.subprocess else run_in_process
            code, err = runner(case, args.case_timeout)
            if not engine_idle(db, args.case_timeout):
                code = None  # a background engine that never finishes counts as a hang
            paid = len(sim.state.queue_calls) - paid_before
            paid += recorded_jobs(db) - jobs_before if code == 2 else 0
            tally.cases[case.kind] += 1
            tally.exits[code] += 1
            shown = f"{case.kind}: {' '.join(a[:40] for a in case.argv)[:160]!r}"
            if code is None:
                tally.hangs.append(shown)
            elif code == -1 or any(s in err for s in ("Traceback", "unexpected error",
                                                      "internal error")):
                tally.tracebacks.append(f"{shown} -> {err.strip()[-300:]}")
            if paid and code == 2:
                tally.paid_on_refused.append(f"{shown}: {paid} paid call(s), exit {code}")
            elif paid:
                tally.paid_accepted += paid
            if number % 500 == 0:
                print(f"  {number}/{len(cases)} cases, {time.monotonic() - started:.0f} s",
                      flush=True)
    elapsed = time.monotonic() - started
    print(f"\n{len(cases)} cases in {elapsed:.0f} s (seed {args.seed}):")
    for kind, n in sorted(tally.cases.items()):
        print(f"  {kind:16} {n}")
    print("exit statuses: " + ", ".join(f"{'hang' if k is None else k}: {v}"
                                         for k, v in sorted(tally.exits.items(),
                                                            key=lambda kv: str(kv[0]))))
    print(f"tracebacks:                 {len(tally.tracebacks)}")
    print(f"paid calls, refused input:  {len(tally.paid_on_refused)}")
    print(f"hangs:                      {len(tally.hangs)}")
    print(f"paid calls, accepted input: {tally.paid_accepted} (valid requests, exit 0)")
    for title, items in (("tracebacks", tally.tracebacks),
                         ("paid on refused input", tally.paid_on_refused),
                         ("hangs", tally.hangs)):
        for item in items[:10]:
            print(f"  {title}: {item}")
    return 1 if tally.tracebacks or tally.paid_on_refused or tally.hangs else 0


if __name__ == "__main__":
    sys.exit(main())
