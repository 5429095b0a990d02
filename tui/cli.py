"""`wan-tui` command line. No Textual import on the headless paths (kept lazy).

Exit status: 0 success, 1 a job or provider failed, 2 usage or configuration error.
Every error is one line on stderr; no traceback reaches a user.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tui.cliparser import build_parser, request_from
from tui.clisteps import (
    confirm,
    one_line,
    quote_all,
    user_config,
    validate,
    warn_deprecated,
)
from tui.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Failure, UsageError

__all__ = ["EXIT_FAIL", "EXIT_OK", "EXIT_USAGE", "Failure", "UsageError", "build_parser", "main"]

def _err(message: str) -> None:
    print(f"wan-tui: {one_line(message)}", file=sys.stderr)


# ---------------------------------------------------------------- commands


async def cmd_models(args) -> int:
    from tui.session import open_session

    config = user_config()
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

    req = request_from(args, with_prompt=False)
    async with open_session(user_config(), lock=False) as s:
        req = await validate(s, req, check_prompt=False)
        (quote,) = await quote_all(s, [req])
    print(f"{req.provider}/{req.model} {req.duration}"
          f"{' ' + req.resolution if req.resolution else ''}: {quote.label()}")
    return EXIT_OK


async def cmd_submit(args) -> int:
    from tui.session import open_session

    req = request_from(args, with_prompt=True)
    config = user_config()
    async with open_session(config, lock=False, role="submit", serves=False) as s:
        req = await validate(s, req)
        await warn_deprecated(s, [req])
        (quote,) = await quote_all(s, [req])
        print(f"price: {quote.label()}  ({req.provider}/{req.model}, {req.duration})")
        if args.max_cost is not None and quote.usd > args.max_cost:
            raise UsageError(f"{quote.label()} is above --max-cost ${args.max_cost:.2f}")
        if not confirm("Submit this paid job?", args.yes):
            print("nothing submitted")
            return EXIT_OK
        (job,) = await s.host.add([req], [quote])  # recorded; the engine (started if
        job = await _wait_for(s, job.id, final=args.wait)  # none runs) submits it
        pid = s.host.lock.holder()
    if job.state.value in ("failed", "unknown", "expired") or (
            args.wait and job.state.value != "done"):
        _err(f"job {job.id} is {job.state.value}" + (f": {job.error}" if job.error else ""))
        return EXIT_FAIL
    if job.state.value == "pending":
        _err(f"job {job.id} is still pending: {job.error or 'the engine has not sent it yet'}; "
             "`wan-tui engine status` says why")
        return EXIT_FAIL
    if not args.wait:
        follows = f"pid {pid} follows it (`wan-tui engine status`)" if pid else \
            "the engine follows it"
        print(f"job {job.id} submitted as {job.remote_id}; {follows}")
    return EXIT_OK


async def _wait_for(s, job_id: int, *, final: bool, timeout_s: float = 120.0):
    """A client's wait for the engine: until the job has its remote id (or settles, or
    its provider is halted), or with `final` until it settles. An engine is started if
    none runs meanwhile (a crash, an idle exit)."""
    import time
    from dataclasses import replace

    deadline = time.monotonic() + timeout_s
    job = await s.store.get(job_id)
    halted_at = 0.0
    while time.monotonic() < deadline or final:
        job = await s.store.get(job_id)
        if not job.state.active or (not final and job.remote_id):
            return job
        s.host.wake()
        if job.state.value == "pending" and time.monotonic() - halted_at > 1.0:
            halted_at = time.monotonic()
            reason = ((await s.host.status()).get("halted") or {}).get(job.provider)
            if reason:
                return replace(job, error=reason)
        await asyncio.sleep(0.1)
    return job


async def cmd_batch(args) -> int:
    from tui.batchfile import read_batch, swept_from
    from tui.followcli import Report, run_following
    from tui.format import money
    from tui.session import open_session

    lines = read_batch(args.file)  # BatchError: exit 2, one line, from main
    config = user_config()
    async with open_session(config, lock=False, role="batch") as s:
        requests = []
        for line in lines:
            try:
                requests.append(await validate(s, line.request))
            except UsageError as err:
                where = f" (sweep {line.variant})" if line.variant else ""
                raise UsageError(f"line {line.line}: {err}{where}") from None
        await warn_deprecated(s, requests)
        quotes = await quote_all(s, requests)
        total = sum(q.usd for q in quotes)
        estimate = any(q.estimate for q in quotes)
        swept = swept_from(len({line.line for line in lines}), len(lines))
        print(f"{len(requests)} jobs{swept}, total {money(total, estimate)}"
              + (" (some prices are estimates)" if estimate else ""))
        if swept:
            print(expansion_preview(lines, requests, quotes))
        if args.max_cost is not None and total > args.max_cost:
            raise UsageError(f"total {money(total, estimate)} is above --max-cost "
                             f"${args.max_cost:.2f}; nothing submitted")
        if not confirm(f"Submit {len(requests)} paid jobs?", args.yes):
            print("nothing submitted")
            return EXIT_OK
        # The batch's jobs are recorded (pending) in one commit before any paid call; the
        # engine (started now if none runs) submits and follows them.
        jobs = await s.host.add(requests, quotes)
        pid = s.host.lock.holder() or s.host.wake()
        if args.follow:
            report = Report()
            report.track(jobs)
            return await run_following(s, report, every=args.progress_every,
                                       quiet=args.quiet)
        if args.submit_only:
            rows = [await _wait_for(s, job.id, final=False) for job in jobs]
            sent = sum(bool(row and row.remote_id) for row in rows)
            print(f"{sent} of {len(rows)} submitted; pid {s.host.lock.holder() or pid} "
                  "follows them to disk (`wan-tui watch` shows their progress)")
            for reason in {row.error for row in rows if row.state.value == "pending"
                           and row.error}:
                _err(reason)
            return EXIT_OK if sent == len(rows) else EXIT_FAIL
    print(f"recorded {len(jobs)} jobs; pid {pid} submits and follows them "
          "(`wan-tui watch` shows their progress)")
    return EXIT_OK


PREVIEW_LINES = 8


def expansion_preview(lines, requests, quotes, shown: int = PREVIEW_LINES) -> str:
    """The first requests of an expanded batch, one line each, as they will be sent."""
    from tui.format import money

    out = []
    for line, req, quote in list(zip(lines, requests, quotes, strict=True))[:shown]:
        variant = f" [{line.variant}]" if line.variant else ""
        prompt = " ".join(req.prompt.split())
        prompt = prompt if len(prompt) <= 40 else prompt[:39] + "…"
        out.append(f"  line {line.line}{variant}: {req.model} {req.duration}"
                   f"{' ' + req.resolution if req.resolution else ''} "
                   f"{money(quote.usd, quote.estimate)} {prompt!r}")
    if len(requests) > shown:
        out.append(f"  ... and {len(requests) - shown} more")
    return "\n".join(one_line(text) for text in out)


async def cmd_watch(args) -> int:
    from tui.followcli import Report, run_following, say
    from tui.session import open_session

    config = user_config()
    async with open_session(config, lock=False, role="watch", serves=False) as s:
        if args.detach:
            holder = s.host.lock.holder()
            if holder is not None:
                say(f"pid {holder} already follows the jobs (`wan-tui engine status`)")
                return EXIT_OK
            pid = s.host.wake()
            say(f"pid {pid} follows the active jobs in the background; log {config.log_file}")
            return EXIT_OK
        report = Report()
        report.track(await s.store.active_jobs())
        if report.jobs and not args.quiet:
            say(f"following {len(report.jobs)} active jobs")
        code = await run_following(s, report, every=args.progress_every, quiet=args.quiet)
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
    from tui.store import open_store

    unknown = JobQuery(states=(JobState.UNKNOWN,))
    store = await open_store(config.history)
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


def _job_dict(job, now: float | None = None) -> dict[str, Any]:
    import time

    from tui.media.facts import video_json
    from tui.whereabouts import file_elsewhere, follower

    holder = follower(job, time.time() if now is None else now)
    here = file_elsewhere(job) is None  # another machine's path is not resolved here

    return {
        "id": job.id,
        "provider": job.provider,
        "model": job.model,
        "remote_id": job.remote_id,
        "state": job.state.value,
        "prompt": job.prompt,
        "file": (str(Path(job.file).resolve()) if here else job.file) if job.file else None,
        # A team's history: the machine whose disk holds the file (None: this one's history)
        "file_host": job.file_host,
        "bytes": job.bytes,
        "sha256": job.sha256,
        "cost_usd": job.cost_usd,
        "cost_is_estimate": job.cost_is_estimate,
        "error": job.error,
        "created_at": job.created_at,
        "submitted_at": job.submitted_at,
        "finished_at": job.finished_at,
        "remote_deleted": job.remote_deleted,
        "batch_id": job.batch_id,
        "source_id": job.source_id,  # the job it was made from (a variation), or None
        "request": job.request.to_dict(),
        "video": video_json(job),
        "pick": job.pick,  # "star", "reject" or None (not picked)
        "picked_at": job.picked_at,
        # A team's history: the engine following an active job ({"name", "lease_left_s"},
        # else None) and the machine that recorded the job (None on one person's history).
        "engine": holder.to_json() if holder else None,
        "origin": job.origin,
    }


async def cmd_list(args) -> int:
    from dataclasses import replace

    from tui.format import job_line
    from tui.jobs import JobState
    from tui.query import JobQuery
    from tui.store import open_store

    config = user_config()
    try:
        states = tuple(JobState(s) for s in args.state) if args.state else None
    except ValueError:
        raise UsageError("unknown --state; use one of "
                         + ", ".join(s.value for s in JobState)) from None
    store = await open_store(config.history)
    try:
        query = JobQuery.parse(args.query or "")  # the dashboard's filter: pick:star, ...
        if states is not None:
            query = replace(query, states=states)
        if args.source is not None:
            query = replace(query, source=args.source)
        jobs = await store.list_jobs(query, limit=args.limit)
    finally:
        await store.close()
    import time

    now = time.time()
    if args.json:
        print(json.dumps([_job_dict(j, now) for j in jobs], indent=2))
    else:
        for job in jobs:
            print(job_line(job, now))
    return EXIT_OK


async def cmd_show(args) -> int:
    import time

    from tui.format import job_line, stamp
    from tui.store import open_store

    store = await open_store(user_config().history)
    try:
        job = await store.get(args.id)
        if job is None:
            raise UsageError(f"no job {args.id}; `wan-tui list` shows the ids")
        events = await store.events(job.id)
    finally:
        await store.close()
    now = time.time()
    print(job_line(job, now))
    for line in _team_lines(job, now):
        print(line)
    shown = _job_dict(job, now)
    for key, value in shown.items():  # times as people read them, not epoch seconds
        if key.endswith("_at") and isinstance(value, int | float):
            shown[key] = stamp(value)
    print(json.dumps(shown, indent=2))
    for ev in events:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ev.at))
        print(f"  {when}  {ev.state.value:11} {ev.detail}")
    return EXIT_OK


def _team_lines(job, now: float) -> list[str]:
    """What `show` adds on a team's history: how to fetch a file from another machine's
    disk, and which engine follows the job."""
    from tui.format import follower_text
    from tui.whereabouts import file_elsewhere, follower

    lines = []
    where = file_elsewhere(job)
    if where is not None:
        lines.append(f"file on {where.host}, not on this machine; fetch it with: {where.scp}")
    holder = follower(job, now)
    if holder is not None:
        lines.append(f"engine: {follower_text(holder)}")
    if job.origin:
        lines.append(f"recorded on {job.origin}")
    return lines


async def _one_job_action(args, action: str) -> int:
    import time

    from tui.format import job_line
    from tui.session import open_session

    config = user_config()
    async with open_session(config, lock=False, role=action, serves=False) as s:
        # EngineError and ProviderError carry their exit status to main, like every WanError.
        job = await _act_on_job(s, args, action)
        pid = s.host.lock.holder()
    if job is not None:
        print(job_line(job, time.time()))
        if action == "requeue" and pid:
            print(f"pid {pid} follows it (`wan-tui engine status`)")
    return EXIT_OK


async def _act_on_job(s, args, action: str):
    """cancel / delete / requeue one job through the engine; None when the user said no."""
    from tui.format import money

    job = await s.engine.get(args.id)
    if action == "cancel":
        job = await s.host.cancel(job.id)
    elif action == "delete":
        warn = "" if job.file else " It has no local copy: the video will be lost."
        if not confirm(f"Delete job {job.id}'s remote media?{warn}", args.yes):
            print("nothing deleted")
            return None
        job = await s.host.delete_remote(job.id)
    else:
        if job.state.active:
            raise UsageError(f"job {job.id} is still {job.state}; cancel it first")
        (quote,) = await quote_all(s, [job.request])
        if not confirm(f"Re-queue job {job.id} as a new paid job for "
                       f"{money(quote.usd, quote.estimate)}?", args.yes):
            print("nothing submitted")
            return None
        job = await s.host.requeue(job.id, quote)
        job = await _wait_for(s, job.id, final=False)
    return job


async def cmd_resolve(args) -> int:
    """Write down what the user found on the provider about an `unknown` job."""
    import time

    from tui.format import job_line, money
    from tui.jobs import JobState, ValidationError, settle_unknown
    from tui.store import open_store

    if args.remote_id is not None and not args.charged:
        raise UsageError("--remote-id goes with --charged (a job with an id was sent)")
    store = await open_store(user_config().history)
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
        from tui.engine.background import EngineStarter
        from tui.engine.lock import EngineLock

        config = user_config()
        pid = EngineStarter(EngineLock(config.db_path.with_name("engine.lock")),
                            config.log_file).ensure()
        print(f"charged; pid {pid} follows it and downloads the video "
              "(`wan-tui watch` shows its progress)")
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
    from tui.store import Finding, check_history, check_server

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
        findings += (check_server(config.database, config.engine_lease_s) if config.database
                     else check_history(config.db_path))
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
    from tui.enginecli import engine_run, engine_status, engine_stop, engine_unit

    config = user_config()
    if args.action == "run":
        return await engine_run(config, spawned=args.spawned)
    if args.action == "status":
        return await engine_status(config, as_json=args.json)
    if args.action == "unit":
        return engine_unit(config)
    return await engine_stop(config)


async def cmd_db(args) -> int:
    from tui.dbcli import cmd_db as run_db

    return await run_db(args)


def cmd_config(args) -> int:
    from tui.config import ensure_config_file

    config = user_config()
    path = ensure_config_file(config)
    print(f"config file  {path}")
    if config.database:
        from tui.store.postgres import mask_dsn

        print(f"history      {mask_dsn(config.database)} (shared by the team)")
    else:
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
    "vary": lambda a: _lazy("tui.varycli", "cmd_vary")(a),
    "import": lambda a: _lazy("tui.importcli", "cmd_import")(a),
    "engine": cmd_engine,
    "db": cmd_db,
}


def _lazy(module: str, name: str):
    """A command kept in its own module, imported only when it runs."""
    import importlib

    return getattr(importlib.import_module(module), name)


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
    if command == "serve":
        from tui.web.serve import cmd_serve

        return cmd_serve(args, user_config())
    if command == "export":
        from tui.web.export import cmd_export

        return cmd_export(args, user_config())
    if command in ("dashboard", "demo"):
        from tui.app.launch import run_dashboard, run_demo

        return run_demo(args) if command == "demo" else run_dashboard(user_config())
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
        _err("interrupted; the engine goes on with the active jobs (`wan-tui engine status`)")
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
