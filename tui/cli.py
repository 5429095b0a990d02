"""`wan-tui` command line. No Textual import on the headless paths (kept lazy).

Exit status: 0 success, 1 a job or provider failed, 2 usage or configuration error.
Every error is one line on stderr; no traceback reaches a user.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from tui import __version__
from tui.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Failure, UsageError

PROVIDER_CHOICES = ("venice", "apixo", "acedata")
__all__ = ["EXIT_FAIL", "EXIT_OK", "EXIT_USAGE", "Failure", "UsageError", "build_parser", "main"]

EPILOG = """\
environment (it wins over the config file):
  VENICE_API_KEY, APIXO_API_KEY, ACEDATA_API_TOKEN   the providers' keys
  VENICE_BASE_URL, APIXO_BASE_URL, ACEDATA_BASE_URL  other API addresses (a proxy, the simulator)
  WAN_TUI_HOME          one folder for config, history, logs and videos
  WAN_TUI_OUTPUT_DIR    where finished videos are saved
  WAN_TUI_DELETE_REMOTE delete the provider's copy once ours is whole (true/false)
  WAN_TUI_TIME_SCALE    shrink every poll interval (for the simulator)

config file: config.toml in the platform config folder (or WAN_TUI_HOME);
`wan-tui config` prints its path, the history, videos and log file.
shell completion: `wan-tui completion bash|zsh|fish`.
"""


def _err(message: str) -> None:
    print(f"wan-tui: {one_line(message)}", file=sys.stderr)


def one_line(text: str) -> str:
    """Messages quote what the user typed or a file held; a newline (or a terminal escape)
    in there must not turn one line into two, or into a command to the terminal."""
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


# ---------------------------------------------------------------- arguments


def _number(text: str, *, low: float, whole: bool = False, above: bool = False):
    """An argparse type: finite, at least (or above) `low`; `nan` would make every
    comparison false, so `--max-cost nan` would cap nothing."""
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is not a {'whole number' if whole else 'number'}") from None
    if not math.isfinite(value) or value < low or (above and value == low):
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} must be a finite number {'above' if above else 'of at least'} "
            f"{low:g}")
    if whole and value > 2**62:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is too large")
    return value


def _usd(text: str) -> float:
    return _number(text, low=0.0)


def _seconds(text: str) -> float:
    return _number(text, low=0.0, above=True)


def _job_id(text: str) -> int:
    return _number(text, low=1, whole=True)


def _count(text: str) -> int:
    return _number(text, low=0, whole=True)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
        raise UsageError(f"{message} (see `wan-tui {self.prog.split()[-1]} --help`)"
                         if " " in self.prog else f"{message} (see `wan-tui --help`)")


def _request_args(p: argparse.ArgumentParser, *, prompt: bool) -> None:
    p.add_argument("--provider", choices=PROVIDER_CHOICES, default="venice",
                   help="which service (default: venice)")
    p.add_argument("--model", "-m", required=True, help="model id (`wan-tui models` lists them)")
    if prompt:
        p.add_argument("--prompt", "-p", required=True, help="what the video shows")
        p.add_argument("--negative-prompt", help="what it must not show (where the model takes it)")
        p.add_argument("--image", help="image-to-video: a local file or an http(s) URL")
        p.add_argument("--seed", type=int,  # its range is checked with the request
                       help="the same seed and prompt give a similar video")
    p.add_argument("--duration", "-d", default="5s", help='e.g. "5s" (default) or "10s"')
    p.add_argument("--resolution", "-r", help="e.g. 720p or 1080p (default: the model's)")
    p.add_argument("--aspect-ratio", "-a", help="e.g. 16:9 or 9:16 (default: the model's)")
    p.add_argument("--audio", action=argparse.BooleanOptionalAction, default=None,
                   help="generate sound (default: the model's)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="provider-specific option (JSON value), e.g. -o shot_type=multi")


JOB_ID_HELP = "the job's number (`wan-tui list` shows them)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wan-tui", description="Terminal dashboard and CLI for hosted AI "
                     "video generation (Venice, APIXO, AceData Cloud).", epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"wan-tui {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="write everything to the log file (see `wan-tui config`)")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND",
                                help="one of these (default: dashboard)")

    sub.add_parser("dashboard", help="open the dashboard (the default)")
    demo = sub.add_parser("demo", help="the dashboard on a built-in simulator (no key needed)")
    demo.add_argument("--jobs", type=_count, default=6, help="jobs already running at start")
    demo.add_argument("--mean", type=_seconds, default=25.0, help="mean job run time, seconds")

    sim = sub.add_parser("sim", help="run the simulator alone (prints its base URLs)",
                         add_help=False)
    sim.add_argument("rest", nargs=argparse.REMAINDER, help="`wan-tui sim --help` lists them")

    models = sub.add_parser("models", help="list a provider's video models")
    models.add_argument("--provider", choices=PROVIDER_CHOICES, default="venice",
                        help="which service (default: venice)")
    models.add_argument("--json", action="store_true", help="one JSON array, for scripts")
    models.add_argument("--refresh", action="store_true", help="ignore the daily cache")

    quote = sub.add_parser("quote", help="price one request without spending")
    _request_args(quote, prompt=False)

    submit = sub.add_parser("submit", help="submit one job (shows the price, asks first)")
    _request_args(submit, prompt=True)
    submit.add_argument("--wait", action="store_true", help="follow it until the file is saved")
    submit.add_argument("--yes", "-y", action="store_true", help="do not ask before spending")
    submit.add_argument("--max-cost", type=_usd, metavar="USD", help="refuse above this price")

    batch = sub.add_parser("batch", help="submit a JSON Lines file of requests and follow them")
    batch.add_argument("file", type=Path, help="JSON Lines: one request object per line; "
                       "`-` reads standard input")
    batch.add_argument("--yes", "-y", action="store_true", help="do not ask before spending")
    batch.add_argument("--max-cost", type=_usd, metavar="USD", help="refuse above this total")
    batch.add_argument("--detach", action="store_true",
                       help="record the jobs and return; a background engine follows them")
    batch.add_argument("--submit-only", action="store_true",
                       help="submit them here and return once each has its id; "
                            "`wan-tui watch` follows them later")
    batch.add_argument("--progress-every", type=_seconds, default=30.0, metavar="SECONDS",
                       help="a summary line this often while following (default 30)")
    batch.add_argument("--quiet", action="store_true", help="print only the end")

    watch = sub.add_parser("watch", help="submit pending jobs and follow all active ones")
    watch.add_argument("--progress-every", type=_seconds, default=30.0, metavar="SECONDS",
                       help="a summary line this often (default 30)")
    watch.add_argument("--quiet", action="store_true", help="print only the end")
    watch.add_argument("--detach", action="store_true",
                       help="start a background engine (no terminal) and return at once")
    watch.add_argument("--background", action="store_true", help=argparse.SUPPRESS)

    engine = sub.add_parser("engine", help="the process that follows the jobs")
    engine.add_argument("action", choices=("status", "stop"),
                        help="status: who follows, since when, budgets, log; "
                             "stop: finish requests on the wire, then exit")

    lst = sub.add_parser("list", help="list jobs from history")
    lst.add_argument("--json", action="store_true", help="one JSON array, for scripts")
    lst.add_argument("--state", action="append", help="only this state (repeatable)")
    lst.add_argument("-q", "--query", help="prompt text search")
    lst.add_argument("--limit", type=_count, default=None,
                     help="at most this many, newest first")

    show = sub.add_parser("show", help="one job with its event timeline")
    show.add_argument("id", type=_job_id, help=JOB_ID_HELP)

    cancel = sub.add_parser("cancel", help="stop tracking a job")
    cancel.add_argument("id", type=_job_id, help=JOB_ID_HELP)
    delete = sub.add_parser("delete", help="delete a job's remote media")
    delete.add_argument("id", type=_job_id, help=JOB_ID_HELP)
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask first")
    requeue = sub.add_parser("requeue", help="submit a job's request again (a new paid job)")
    requeue.add_argument("id", type=_job_id, help=JOB_ID_HELP)
    requeue.add_argument("--yes", "-y", action="store_true", help="do not ask before spending")

    resolve = sub.add_parser("resolve", help="settle an unknown (maybe charged) job once you "
                             "have checked the provider")
    resolve.add_argument("id", type=_job_id, help=JOB_ID_HELP)
    answer = resolve.add_mutually_exclusive_group(required=True)
    answer.add_argument("--charged", action="store_true",
                        help="it was charged: its quote counts as spent")
    answer.add_argument("--not-charged", action="store_true",
                        help="it was not charged: it leaves today's spend")
    resolve.add_argument("--remote-id", metavar="ID",
                         help="with --charged: the provider's id for it; wan-tui then follows "
                              "it and downloads the video")

    sub.add_parser("config", help="show where things are and which providers are configured")
    sub.add_parser("doctor", help="check the history, output folder and config; say how to "
                   "recover")
    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"),
                            help='e.g. `eval "$(wan-tui completion bash)"` in ~/.bashrc')
    for command in sub.choices.values():
        # `wan-tui list --debug` works too; SUPPRESS keeps it from undoing `wan-tui --debug list`.
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help=argparse.SUPPRESS)
    return parser


# ---------------------------------------------------------------- helpers


def _load_config():
    from tui.config import load_config

    return load_config()  # a ConfigError is a WanError with exit status 2: main says it


def _options(pairs: Sequence[str]) -> dict[str, Any]:
    """`-o KEY=VALUE` pairs: VALUE is JSON when it parses (numbers, true, lists), else a
    word. Names and values pass the same checks as a batch line's options."""
    from tui.jobs import ValidationError, check_option_name, check_option_value

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {pair[:60]!r}: use KEY=VALUE")
        try:
            # NaN and Infinity are not JSON; a deep [[[...]]] would raise RecursionError.
            value: Any = json.loads(raw, parse_constant=_not_a_number) if (
                len(raw) < 100_000 and raw.count("[") + raw.count("{") <= 10) else raw
        except (ValueError, RecursionError):
            value = raw  # a bare word is a string
        try:
            out[check_option_name(key)] = check_option_value(key, value)
        except ValidationError as err:
            raise UsageError(f"--option {err}") from None
    return out


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a number a provider takes")


def _request_from(args: argparse.Namespace, *, with_prompt: bool):
    """The request the arguments describe, every field checked as a batch line's is."""
    from tui.images import image_argument
    from tui.jobs import JobRequest, ValidationError

    try:
        fields: dict[str, Any] = {
            "provider": args.provider,
            "model": args.model,
            "prompt": args.prompt if with_prompt else "price check",
            "duration": args.duration,
            "resolution": args.resolution,
            "aspect_ratio": args.aspect_ratio,
            "audio": args.audio,
            "options": _options(args.option),
        }
        if with_prompt:
            fields.update(negative_prompt=args.negative_prompt, seed=args.seed)
            if args.image:
                fields["image_url"] = image_argument(args.image)
        return JobRequest.from_dict({k: v for k, v in fields.items() if v is not None})
    except ValidationError as err:
        raise UsageError(_as_flag(err)) from None


def _as_flag(err) -> str:
    """`duration: 5.9 is not ...` as the user typed it: `--duration: 5.9 is not ...`."""
    message, field = str(err), err.field
    if not field or not message.startswith(f"{field}: "):
        return message
    flag = {"image_url": "image", "options": "option"}.get(field, field.replace("_", "-"))
    return f"--{flag}: {message[len(field) + 2:]}"


def _stdin_is_terminal() -> bool:
    # `wan-tui batch FILE <&-` leaves sys.stdin None; a closed or detached one raises.
    stdin = sys.stdin
    try:
        return stdin is not None and not stdin.closed and stdin.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def _confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    if not _stdin_is_terminal():
        raise UsageError("no terminal to ask on: add --yes to go ahead (nothing was sent "
                         "or spent)")
    try:
        answer = input(f"{question} [y/N] ")
    except (EOFError, OSError, ValueError):
        return False
    return answer.strip().lower() in ("y", "yes")


async def _quote_all(session, requests) -> list:
    return [await session.engine.quote(req) for req in requests]


# ---------------------------------------------------------------- commands


async def cmd_models(args) -> int:
    from tui.session import open_session

    config = _load_config()
    async with open_session(config, lock=False) as s:
        models = await s.engine.catalog.models(args.provider, refresh=args.refresh)
    if args.json:
        print(json.dumps([m.to_dict() for m in models], indent=2))
        return EXIT_OK
    for m in sorted(models, key=lambda m: m.id):
        bits = [m.model_type, "/".join(m.durations)]
        if m.resolutions:
            bits.append("/".join(m.resolutions))
        if m.aspect_ratios:
            bits.append("/".join(m.aspect_ratios))
        if m.audio_configurable:
            bits.append("audio on/off")
        elif m.audio:
            bits.append("audio")
        if m.deprecation:
            bits.append(f"DEPRECATED {m.deprecation.date or ''} → {m.deprecation.replacement}")
        print(f"{m.id:44} {'  '.join(bits)}")
    return EXIT_OK


async def cmd_quote(args) -> int:
    from tui.session import open_session

    req = _request_from(args, with_prompt=False)
    async with open_session(_load_config(), lock=False) as s:
        req = await _validate(s, req, check_prompt=False)
        (quote,) = await _quote_all(s, [req])
    print(f"{req.provider}/{req.model} {req.duration}"
          f"{' ' + req.resolution if req.resolution else ''}: {quote.label()}")
    return EXIT_OK


async def _validate(session, req, *, check_prompt: bool = True):
    """The request as it will be sent (normalized), or UsageError with the reason."""
    from dataclasses import replace

    from tui.jobs import ValidationError

    provider = session.providers.get(req.provider)
    if provider is not None and not provider.configured:
        raise UsageError(getattr(provider, "not_configured", f"{req.provider}: no API key"))
    try:
        if check_prompt:
            return await session.engine.catalog.prepare(req)
        priced = await session.engine.catalog.prepare(replace(req, prompt="x"))
        return replace(priced, prompt=req.prompt)
    except ValidationError as err:
        raise UsageError(str(err)) from None


async def cmd_submit(args) -> int:
    from tui.followcli import hand_to_background, say
    from tui.session import open_session

    req = _request_from(args, with_prompt=True)
    config = _load_config()
    async with open_session(config, lock=False, role="submit", serves=False) as s:
        req = await _validate(s, req)
        (quote,) = await _quote_all(s, [req])
        print(f"price: {quote.label()}  ({req.provider}/{req.model}, {req.duration})")
        if args.max_cost is not None and quote.usd > args.max_cost:
            raise UsageError(f"{quote.label()} is above --max-cost ${args.max_cost:.2f}")
        if not _confirm("Submit this paid job?", args.yes):
            print("nothing submitted")
            return EXIT_OK
        here = await s.host.claim()
        if here:
            await s.engine.start(only=[])
            s.engine.follow = args.wait
        (job,) = await s.host.add([req], [quote])
        if here:
            printer = _Printer(s.engine)
            await s.engine.wait_idle()
            printer.close()
        else:
            say(f"job {job.id} recorded; {s.host.follower(await s.host.status()).describe()} "
                "and submits it")
            job = await _wait_for(s, job.id, final=args.wait)
        job = await s.store.get(job.id) or job
    if job.state.value in ("failed", "unknown", "expired") or (
            args.wait and job.state.value != "done"):
        return EXIT_FAIL
    if job.state.value == "pending" and here:
        _err(f"job {job.id} is still pending: {s.engine.halted.get(req.provider, '')}")
        return EXIT_FAIL
    if not args.wait:
        pid = hand_to_background(config) if here else None
        follows = (f"pid {pid} follows it in the background (`wan-tui engine status`)"
                   if pid else "the running engine follows it")
        print(f"job {job.id} submitted as {job.remote_id}; {follows}")
    return EXIT_OK


async def _wait_for(s, job_id: int, *, final: bool, timeout_s: float = 120.0):
    """A client's wait for the engine: until the job has its remote id (or settles),
    or with `final` until it settles."""
    import time

    deadline = time.monotonic() + timeout_s
    job = await s.store.get(job_id)
    while time.monotonic() < deadline or final:
        job = await s.store.get(job_id)
        if not job.state.active or (not final and job.remote_id):
            return job
        await asyncio.sleep(0.1)
    return job


async def cmd_batch(args) -> int:
    from tui.batchfile import read_batch
    from tui.followcli import Report, hand_to_background, run_following
    from tui.format import money
    from tui.session import open_session

    lines = read_batch(args.file)  # BatchError: exit 2, one line, from main
    config = _load_config()
    async with open_session(config, lock=False, role="batch") as s:
        requests = []
        for line in lines:
            try:
                requests.append(await _validate(s, line.request))
            except UsageError as err:
                raise UsageError(f"line {line.line}: {err}") from None
        quotes = await _quote_all(s, requests)
        total = sum(q.usd for q in quotes)
        estimate = any(q.estimate for q in quotes)
        print(f"{len(requests)} jobs, total {money(total, estimate)}"
              + (" (some prices are estimates)" if estimate else ""))
        if args.max_cost is not None and total > args.max_cost:
            raise UsageError(f"total {money(total, estimate)} is above --max-cost "
                             f"${args.max_cost:.2f}; nothing submitted")
        if not _confirm(f"Submit {len(requests)} paid jobs?", args.yes):
            print("nothing submitted")
            return EXIT_OK
        # The batch's jobs are recorded (pending) in one commit before any paid call.
        here = not args.detach and await s.host.claim(start=False)
        jobs = await s.host.add(requests, quotes)
        if not here:
            who = s.host.follower(await s.host.status())
            if who.pid is None:
                pass  # handed to a background engine below, once this session is closed
            else:
                print(f"recorded {len(jobs)} jobs; {who.describe()} and submits them")
                return EXIT_OK
        elif args.submit_only:
            s.engine.follow = False
            await s.engine.start(only=[job.id for job in jobs])
            printer = _Printer(s.engine)
            await s.engine.wait_idle()
            printer.close()
            rows = [await s.store.get(job.id) for job in jobs]
            sent = sum(bool(row and row.remote_id) for row in rows)
            print(f"{sent} of {len(rows)} submitted; `wan-tui watch` follows them to disk")
            for reason in s.engine.halted.values():
                _err(reason)
            return EXIT_OK if sent == len(rows) else EXIT_FAIL
        else:
            # This process is the engine: submit and follow at once, so no finished video
            # waits for the last submit.
            report = Report()
            report.track(jobs)
            await s.host.claim()
            return await run_following(s, report, every=args.progress_every,
                                       quiet=args.quiet)
    pid = hand_to_background(config)
    print(f"recorded {len(jobs)} jobs; pid {pid} submits and follows them in the background "
          "(`wan-tui watch` shows their progress)")
    return EXIT_OK


class _Printer:
    """Prints a line per state change (the CLI's view of engine events)."""

    def __init__(self, engine) -> None:
        from tui.engine import JobChanged, Notice

        self._job_changed, self._notice = JobChanged, Notice
        self.engine = engine
        self._unsub = engine.subscribe(self)

    def __call__(self, event) -> None:
        from tui.followcli import say
        from tui.format import job_line

        if isinstance(event, self._job_changed) and event.transition:
            say(job_line(event.job, self.engine.clock.now(), event.detail))
        elif isinstance(event, self._notice):
            say(f"[{event.level}] {event.message}", err=True)

    def close(self) -> None:
        self._unsub()


async def cmd_watch(args) -> int:
    from tui.followcli import Report, run_following, say
    from tui.session import open_session

    config = _load_config()
    if args.detach:
        from tui.engine.background import spawn_background_engine
        from tui.engine.lock import EngineLock
        from tui.session import log_path

        holder = EngineLock(config.db_path.with_name("engine.lock")).holder()
        if holder is not None:
            say(f"pid {holder} already follows the jobs (`wan-tui engine status`)")
            return EXIT_OK
        pid = spawn_background_engine(log_path(config))
        say(f"pid {pid} follows the active jobs in the background; log {log_path(config)}")
        return EXIT_OK
    role = "background" if args.background else "watch"
    if args.background:
        import logging

        # No terminal: what it does goes to the log file (set up by main), at INFO.
        logging.getLogger("wan_tui").setLevel(logging.INFO)
    async with open_session(config, lock=False, role=role) as s:
        report = Report()
        report.track(await s.store.active_jobs())
        if not args.background and report.jobs:
            say(f"following {len(report.jobs)} active jobs")
        code = await run_following(s, report, every=args.progress_every,
                                   quiet=args.quiet or args.background,
                                   background=args.background)
        if s.engine.downloader.disk_problem:
            _err(s.engine.downloader.disk_problem)
    attention = await _unknown_jobs_line(config)
    if attention and code != 130:  # a stop says how to resume; not the moment
        _err(attention)
        return EXIT_FAIL
    return code


async def _unknown_jobs_line(config) -> str | None:
    """One line while any job is `unknown` (maybe charged): it needs the user, so a
    watch that ends is not a success until each is settled."""
    from tui.format import money
    from tui.jobs import JobState
    from tui.query import JobQuery
    from tui.store import Store

    unknown = JobQuery(states=(JobState.UNKNOWN,))
    store = await Store.open(config.db_path)
    try:
        ids = [j.id for j in await store.list_jobs(unknown, order="created", descending=False,
                                                   limit=6)]
        total = await store.count_jobs(unknown) if len(ids) > 5 else len(ids)
        maybe = (await store.spend_detail(0.0)).maybe_usd if ids else 0.0
    finally:
        await store.close()
    if not ids:
        return None
    shown = ", ".join(map(str, ids[:5])) + (", ..." if total > 5 else "")
    return (f"{total} job{'s' if total != 1 else ''} unknown ({shown}), maybe charged "
            f"{money(maybe)} in all: check the provider, then `wan-tui resolve ID --charged` "
            "or `--not-charged`")


def _job_dict(job) -> dict[str, Any]:
    from tui.media.facts import video_json

    return {
        "id": job.id,
        "provider": job.provider,
        "model": job.model,
        "remote_id": job.remote_id,
        "state": job.state.value,
        "prompt": job.prompt,
        "file": str(Path(job.file).resolve()) if job.file else None,
        "bytes": job.bytes,
        "sha256": job.sha256,
        "cost_usd": job.cost_usd,
        "cost_is_estimate": job.cost_is_estimate,
        "error": job.error,
        "created_at": job.created_at,
        "submitted_at": job.submitted_at,
        "finished_at": job.finished_at,
        "remote_deleted": job.remote_deleted,
        "request": job.request.to_dict(),
        "video": video_json(job),
    }


async def cmd_list(args) -> int:
    from tui.format import job_line
    from tui.jobs import JobState
    from tui.query import JobQuery
    from tui.store import Store

    config = _load_config()
    try:
        states = tuple(JobState(s) for s in args.state) if args.state else None
    except ValueError:
        raise UsageError("unknown --state; use one of "
                         + ", ".join(s.value for s in JobState)) from None
    store = await Store.open(config.db_path)
    try:
        jobs = await store.list_jobs(JobQuery(states=states, text=args.query), limit=args.limit)
    finally:
        await store.close()
    if args.json:
        print(json.dumps([_job_dict(j) for j in jobs], indent=2))
    else:
        import time

        for job in jobs:
            print(job_line(job, time.time()))
    return EXIT_OK


async def cmd_show(args) -> int:
    import time

    from tui.format import job_line, stamp
    from tui.store import Store

    store = await Store.open(_load_config().db_path)
    try:
        job = await store.get(args.id)
        if job is None:
            raise UsageError(f"no job {args.id}; `wan-tui list` shows the ids")
        events = await store.events(job.id)
    finally:
        await store.close()
    print(job_line(job, time.time()))
    shown = _job_dict(job)
    for key, value in shown.items():  # times as people read them, not epoch seconds
        if key.endswith("_at") and isinstance(value, int | float):
            shown[key] = stamp(value)
    print(json.dumps(shown, indent=2))
    for ev in events:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ev.at))
        print(f"  {when}  {ev.state.value:11} {ev.detail}")
    return EXIT_OK


async def _one_job_action(args, action: str) -> int:
    import time

    from tui.format import job_line
    from tui.session import open_session

    config = _load_config()
    async with open_session(config, lock=False, role=action, serves=False) as s:
        # The engine itself if none runs (acting directly); its client if one does.
        await s.host.claim()
        # EngineError and ProviderError carry their exit status to main, like every WanError.
        job = await _act_on_job(s, args, action)
        here = s.host.is_engine
    if job is not None:
        print(job_line(job, time.time()))
        if action == "requeue" and here:
            from tui.followcli import hand_to_background

            pid = hand_to_background(config)
            if pid:
                print(f"pid {pid} follows it in the background (`wan-tui engine status`)")
    return EXIT_OK


async def _act_on_job(s, args, action: str):
    """cancel / delete / requeue one job; None when the user said no."""
    from tui.format import money

    job = await s.engine.get(args.id)
    if action == "cancel":
        job = await s.host.cancel(job.id)
    elif action == "delete":
        warn = "" if job.file else " It has no local copy: the video will be lost."
        if not _confirm(f"Delete job {job.id}'s remote media?{warn}", args.yes):
            print("nothing deleted")
            return None
        job = await s.host.delete_remote(job.id)
    else:
        if job.state.active:
            raise UsageError(f"job {job.id} is still {job.state}; cancel it first")
        (quote,) = await _quote_all(s, [job.request])
        if not _confirm(f"Re-queue job {job.id} as a new paid job for "
                        f"{money(quote.usd, quote.estimate)}?", args.yes):
            print("nothing submitted")
            return None
        if s.host.is_engine:
            await s.engine.start(only=[])
            s.engine.follow = False
        job = await s.host.requeue(job.id, quote)
        if s.host.is_engine:
            await s.engine.wait_idle()
        else:
            job = await _wait_for(s, job.id, final=False)
        job = await s.store.get(job.id)
    return job


async def cmd_resolve(args) -> int:
    """Write down what the user found on the provider about an `unknown` job."""
    import time

    from tui.format import job_line, money
    from tui.jobs import JobState, ValidationError, settle_unknown
    from tui.store import Store

    if args.remote_id is not None and not args.charged:
        raise UsageError("--remote-id goes with --charged (a job with an id was sent)")
    store = await Store.open(_load_config().db_path)
    try:
        job = await store.get(args.id)
        if job is None:
            raise UsageError(f"no job {args.id}; `wan-tui list --state unknown` shows them")
        try:
            plan = settle_unknown(job, charged=args.charged, now=time.time(),
                                  remote_id=args.remote_id)
        except ValidationError as err:
            raise UsageError(str(err)) from None
        if plan.fields.get("remote_id"):
            other = await store.find_by_remote_id(job.provider, plan.fields["remote_id"])
            if other is not None and other.id != job.id:
                raise UsageError(f"job {other.id} already has {job.provider} id "
                                 f"{plan.fields['remote_id']}")
        # A compare-and-set on `unknown`: two answers at once cannot both be written.
        updated = await store.transition(job.id, plan.state, plan.detail,
                                         expect={JobState.UNKNOWN}, **plan.fields)
    finally:
        await store.close()
    if updated is None:
        raise UsageError(f"job {args.id} changed meanwhile; look again (`wan-tui show "
                         f"{args.id}`)")
    print(job_line(updated, time.time()))
    if updated.state == JobState.QUEUED:
        print("charged; `wan-tui watch` (or the dashboard, when it next starts) follows it "
              "and downloads the video")
    elif args.charged:
        print(f"charged: {money(updated.cost_usd or 0.0)} counts in the spend of the day "
              "it was sent")
    else:
        print("not charged: it no longer counts in today's spend")
    return EXIT_OK


def cmd_doctor(args) -> int:
    """Check what wan-tui depends on; one line per check, the fix under each problem."""
    import stat

    from tui.config import ConfigError, load_config
    from tui.engine.files import folder_problem
    from tui.store import Finding, check_history

    try:
        config = load_config()
    except ConfigError as err:
        findings = [Finding(False, f"config: {err}", "fix or move the config file")]
    else:
        findings = [Finding(True, f"config {config.config_file}")]
        cfg = config.config_file
        if cfg.exists() and cfg.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            findings.append(Finding(False, f"{cfg} is readable by others (it may hold keys)",
                                    f"chmod 600 {cfg}"))
        findings += check_history(config.db_path)
        problem = folder_problem(config.output_dir)
        findings.append(Finding(True, f"output folder {config.output_dir} is writable")
                        if problem is None else Finding(False, problem))
        from tui.termcaps import detect

        findings.append(Finding(True, detect(config.images).describe()))
    for finding in findings:
        print(f"{'ok ' if finding.ok else 'BAD'}  {finding.text}")
        if finding.fix:
            print(f"     -> {finding.fix}")
    bad = sum(not f.ok for f in findings)
    print("all good" if not bad else f"{bad} problem{'s' if bad > 1 else ''} found")
    return EXIT_OK if not bad else EXIT_FAIL


async def cmd_engine(args) -> int:
    from tui.followcli import engine_status, engine_stop

    config = _load_config()
    if args.action == "status":
        return await engine_status(config)
    return await engine_stop(config)


def cmd_config(args) -> int:
    from tui.config import ensure_config_file

    config = _load_config()
    path = ensure_config_file(config)
    print(f"config file  {path}")
    print(f"history      {config.db_path}")
    print(f"videos       {config.output_dir}")
    print(f"log file     {config.log_file}")
    for name, pc in config.providers.items():
        state = "configured" if pc.configured else "not configured (no key)"
        print(f"{name:12} {pc.base_url}  {state}")
    return EXIT_OK


# ---------------------------------------------------------------- entry point

ASYNC_COMMANDS = {
    "models": cmd_models,
    "quote": cmd_quote,
    "submit": cmd_submit,
    "batch": cmd_batch,
    "watch": cmd_watch,
    "list": cmd_list,
    "show": cmd_show,
    "cancel": lambda a: _one_job_action(a, "cancel"),
    "delete": lambda a: _one_job_action(a, "delete"),
    "requeue": lambda a: _one_job_action(a, "requeue"),
    "resolve": cmd_resolve,
    "engine": cmd_engine,
}


def run(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:
        from tui.sim.server import run_cli

        return run_cli(argv[1:])
    args = build_parser().parse_args(argv)
    command = args.command or "dashboard"
    if command == "completion":
        from tui.completion import script

        print(script(build_parser(), args.shell), end="")
        return EXIT_OK
    from tui.logs import setup_logging

    # Before any command: the dashboard must never log over its own screen.
    setup_logging(debug=args.debug)
    if command == "sim":  # `wan-tui --debug sim ...`
        from tui.sim.server import run_cli

        return run_cli(args.rest)
    if command == "config":
        return cmd_config(args)
    if command == "doctor":
        return cmd_doctor(args)
    if command in ("dashboard", "demo"):
        from tui.app.launch import run_dashboard, run_demo

        return run_demo(args) if command == "demo" else run_dashboard(_load_config())
    return asyncio.run(ASYNC_COMMANDS[command](args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; every failure ends as one line on stderr and an exit status."""
    import logging

    from tui.errors import WanError

    log = logging.getLogger("wan_tui.cli")
    try:
        return run(argv)
    except WanError as err:
        log.info("exit %d: %s", err.exit_status, err)
        _err(str(err))
        return err.exit_status
    except KeyboardInterrupt:
        _err("interrupted; active jobs resume with `wan-tui watch`")
        return EXIT_INTERRUPTED
    except OSError as err:  # a file or folder the user named or owns: say which
        _err(f"{err.strerror or err}: {getattr(err, 'filename', '') or ''}".rstrip(": "))
        return EXIT_FAIL
    except Exception as err:  # a bug: the traceback goes to the log file, not to the user
        log.exception("unexpected error")
        _err(f"unexpected error ({type(err).__name__}: {err}); "
             f"the details are in {_log_file()}")
        return EXIT_FAIL


def _log_file() -> str:
    from tui.config import default_log_file

    return str(default_log_file())


if __name__ == "__main__":
    sys.exit(main())
