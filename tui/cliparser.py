"""The command line's grammar: the argparse parser of `wan-tui`, the checks on each flag's
value (finite, whole, in range: `--max-cost nan` would cap nothing), and a request built
from the flags. No Textual, no engine: `--help` and completion load only this.
"""

from __future__ import annotations

import argparse
import json
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from tui import __version__
from tui.errors import UsageError

PROVIDER_CHOICES = ("venice", "apixo", "acedata")


def _epilog() -> str:
    from tui.config import ENVIRONMENT  # one list, also written to docs/reference/

    names = "".join(textwrap.fill(meaning, 96, initial_indent=f"  {name:22} ",
                                  subsequent_indent=" " * 25) + "\n"
                    for name, meaning in ENVIRONMENT)
    return ("environment (it wins over the config file):\n" + names + "\n"
            "config file: config.toml in the platform config folder (or WAN_TUI_HOME);\n"
            "`wan-tui config` prints its path, the history, videos and log file.\n"
            "shell completion: `wan-tui completion bash|zsh|fish`.\n")


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
                     "video generation (Venice, APIXO, AceData Cloud).", epilog=_epilog(),
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

    batch = sub.add_parser("batch", help="record a JSON Lines file of requests; the engine "
                                         "submits and follows them")
    batch.add_argument("file", type=Path, help="JSON Lines: one request object per line; "
                       "`-` reads standard input")
    batch.add_argument("--yes", "-y", action="store_true", help="do not ask before spending")
    batch.add_argument("--max-cost", type=_usd, metavar="USD", help="refuse above this total")
    batch.add_argument("--follow", action="store_true",
                       help="print their progress until they end, as `watch` does")
    # The default since the engine became a process of its own; kept for old scripts.
    batch.add_argument("--detach", action="store_true", help=argparse.SUPPRESS)
    batch.add_argument("--submit-only", action="store_true",
                       help="return once each job has its id (the engine follows them on)")
    batch.add_argument("--progress-every", type=_seconds, default=30.0, metavar="SECONDS",
                       help="a summary line this often while following (default 30)")
    batch.add_argument("--quiet", action="store_true", help="print only the end")

    from tui.importcli import add_parser as add_import
    from tui.varycli import add_parser as add_vary

    add_vary(sub, job_id=_job_id, usd=_usd, seconds=_seconds, count=_count)
    add_import(sub)

    watch = sub.add_parser("watch", help="print the progress of every active job (the engine "
                                         "follows them) until they end")
    watch.add_argument("--progress-every", type=_seconds, default=30.0, metavar="SECONDS",
                       help="a summary line this often (default 30)")
    watch.add_argument("--quiet", action="store_true", help="print only the end")
    watch.add_argument("--detach", action="store_true",
                       help="start the engine (if none runs) and return at once")

    engine = sub.add_parser("engine", help="the process that follows the jobs")
    engine.add_argument("action", choices=("run", "status", "stop", "unit"),
                        help="run: be the engine, in the foreground (systemd, debugging); "
                             "status: pid, host, since, active jobs, budgets, halts, log; "
                             "stop: finish requests on the wire, then exit; "
                             "unit: print a systemd user unit that runs it")
    engine.add_argument("--json", action="store_true", help="status as one JSON object")
    # A client's detached start (tui/engine/background.py): no lines on a terminal.
    engine.add_argument("--spawned", action="store_true", help=argparse.SUPPRESS)

    lst = sub.add_parser("list", help="list jobs from history")
    lst.add_argument("--json", action="store_true", help="one JSON array, for scripts")
    lst.add_argument("--state", action="append", help="only this state (repeatable)")
    lst.add_argument("-q", "--query", help='the dashboard\'s filter: prompt words, '
                     '"model:wan batch:31 pick:star" (pick:none: not picked yet)')
    lst.add_argument("--from", dest="source", type=_job_id, metavar="ID",
                     help="only the jobs made from job ID (its variations)")
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

    from tui.dbcli import add_parser as add_db_parser

    add_db_parser(sub)

    from tui.web.export import add_parser as add_export
    from tui.web.serve import add_parser as add_serve

    add_serve(sub)
    add_export(sub)

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


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
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


def request_from(args: argparse.Namespace, *, with_prompt: bool):
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
            "options": parse_options(args.option),
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
