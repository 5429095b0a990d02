"""`wan-tui vary ID... --count N`: N variations of each job, priced and confirmed once.

A variation is the job's request with a new seed where its provider takes one (APIXO,
AceData), otherwise the same request again (Venice). They are recorded as one batch of
their own, each linked to the job it came from (`wan-tui list`, the dashboard's `from:N`),
then submitted and followed as `wan-tui batch` does.
"""

from __future__ import annotations

import argparse
from typing import Any

from tui.errors import EXIT_OK, UsageError

PLAN_LINES = 8  # variations listed one by one before the confirm; the rest are counted


def add_parser(sub: Any, *, job_id: Any, usd: Any, seconds: Any, count: Any) -> None:
    """Register `vary` (tui/cli.py passes its argument types, so they check alike)."""
    vary = sub.add_parser("vary", help="N variations of jobs (new seeds where the model "
                          "takes one); priced, asks first")
    vary.add_argument("ids", type=job_id, nargs="+", metavar="ID",
                      help="the jobs to vary (`wan-tui list` shows their numbers)")
    vary.add_argument("--count", "-n", type=count, default=3,
                      help="variations of each job (default 3)")
    vary.add_argument("--yes", "-y", action="store_true", help="do not ask before spending")
    vary.add_argument("--max-cost", type=usd, metavar="USD", help="refuse above this total")
    vary.add_argument("--detach", action="store_true",
                      help="record the jobs and return; the engine follows them")
    vary.add_argument("--progress-every", type=seconds, default=30.0, metavar="SECONDS",
                      help="a summary line this often while following (default 30)")
    vary.add_argument("--quiet", action="store_true", help="print only the end")


def plan_lines(planned: list, quotes: list) -> list[str]:
    from tui.format import money

    out = []
    for v, q in list(zip(planned, quotes, strict=True))[:PLAN_LINES]:
        seed = f"seed {v.request.seed}" if v.seed_changed else "same request"
        out.append(f"  from #{v.source.id}: {v.request.provider}/{v.request.model} "
                   f"{v.request.duration} {seed} {money(q.usd, q.estimate)}")
    if len(planned) > PLAN_LINES:
        out.append(f"  ... and {len(planned) - PLAN_LINES} more")
    return out


async def cmd_vary(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tui.clisteps import confirm, one_line, quote_all, user_config, validate
    from tui.followcli import Report, run_following
    from tui.format import money
    from tui.jobs import ValidationError
    from tui.session import open_session
    from tui.variations import describe, variations

    config = user_config()
    async with open_session(config, lock=False, role="vary", serves=False) as s:
        jobs = []
        for job_id in dict.fromkeys(args.ids):  # each job once, in the order given
            job = await s.store.get(job_id)
            if job is None:
                raise UsageError(f"no job {job_id}; `wan-tui list` shows the ids")
            jobs.append(job)

        def takes_seed(name: str) -> bool:
            provider = s.providers.get(name)
            return provider is not None and provider.takes_seed

        try:
            planned = variations(jobs, args.count, takes_seed)
        except ValidationError as err:
            raise UsageError(f"--{err}") from None
        # Today's catalogue decides (a model retired since is refused here, not on the wire).
        prepared = {}
        for job in jobs:
            try:
                prepared[job.id] = (await validate(s, job.request)).model
            except UsageError as err:
                raise UsageError(f"job {job.id}: {err}") from None
        planned = [replace(v, request=replace(v.request, model=prepared[v.source.id]))
                   for v in planned]
        quotes = await quote_all(s, [v.request for v in planned])
        total = sum(q.usd for q in quotes)
        estimate = any(q.estimate for q in quotes)
        print(f"{describe(planned)}: {len(planned)} jobs, total {money(total, estimate)}"
              + (" (some prices are estimates)" if estimate else ""))
        for line in plan_lines(planned, quotes):
            print(one_line(line))
        if args.max_cost is not None and total > args.max_cost:
            raise UsageError(f"total {money(total, estimate)} is above --max-cost "
                             f"${args.max_cost:.2f}; nothing submitted")
        if not confirm(f"Submit {len(planned)} paid jobs?", args.yes):
            print("nothing submitted")
            return EXIT_OK
        # One commit, before any paid call: a batch of their own, each linked to its source.
        # The engine (started now if none runs) submits and follows them.
        new = await s.host.add([v.request for v in planned], quotes,
                               sources=[v.source.id for v in planned])
        print(f"recorded as jobs #{new[0].id}-#{new[-1].id} (batch:{new[0].batch_id}; "
              f"from:{jobs[0].id} lists the variations of #{jobs[0].id})")
        if not args.detach:
            report = Report()
            report.track(new)
            return await run_following(s, report, every=args.progress_every, quiet=args.quiet)
        pid = s.host.lock.holder() or s.host.wake()
    print(f"pid {pid} submits and follows them (`wan-tui watch` shows their progress)")
    return EXIT_OK
