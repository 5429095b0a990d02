"""What the job keys do. Each runs in a worker of the App; anything in EXPECTED that escapes
becomes an error notification (see Dashboard._guarded).

Money rules on this side: a re-queue is a new paid job and is confirmed with its price;
deleting a remote copy is confirmed, louder when there is no local copy; stopping the
tracking of a job that was already sent is confirmed too (the provider may still charge).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from tui import format as fmt
from tui.app.facade import EngineError
from tui.app.notify import has_display, open_in_viewer
from tui.app.screens.confirm import ConfirmScreen
from tui.errors import WanError
from tui.jobs import Job, JobState
from tui.whereabouts import file_elsewhere

if TYPE_CHECKING:
    from tui.app.dashboard import Dashboard
    from tui.app.screens.result import SubmitResult

EXPECTED = (WanError, OSError)  # every refusal wan-tui words for a human, and the disk's
REQUEUEABLE = (JobState.FAILED, JobState.EXPIRED, JobState.CANCELLED, JobState.UNKNOWN)
LISTED = 8  # jobs named one by one in a confirmation; the rest are counted


async def _jobs(app: Dashboard, ids: list[int]) -> list[Job]:
    found = [await app.facade.get(job_id) for job_id in ids]
    return [job for job in found if job is not None]


def _listing(lines: list[str]) -> str:
    shown = lines[:LISTED]
    if len(lines) > LISTED:
        shown.append(f"… and {len(lines) - LISTED} more")
    return "\n".join(shown)


def _label(job: Job) -> str:
    return f"#{job.id} {job.provider}/{fmt.excerpt(job.model, 28)} {fmt.shape(job)}"


# ---------------------------------------------------------------- files


def _file_of(app: Dashboard, job: Job) -> Path | None:
    if not job.file:
        app.toast(f"#{job.id} has no file yet ({job.state})", "warning")
        return None
    path = Path(job.file).resolve()
    if not path.exists():
        app.toast(f"#{job.id}: {path} is no longer on disk", "error")
        return None
    return path


def _copy_scp(app: Dashboard, job: Job) -> bool:
    """Another machine's file (a team's history): its path means nothing here, so `o` and
    `y` put the `scp` line that fetches it on the user's clipboard instead. True if so."""
    where = file_elsewhere(job)
    if where is None:
        return False
    app.terminal.copy(where.scp)
    app.toast(f"on {where.host}: `{where.scp}` copied", timeout=12)
    return True


def copy_path(app: Dashboard, job: Job, why: str = "") -> None:
    if _copy_scp(app, job):
        return
    path = _file_of(app, job)
    if path is not None:
        app.terminal.copy(str(path))
        app.toast(f"{why}copied: {path}", timeout=12)


def copy_remote_id(app: Dashboard, job: Job) -> None:
    if not job.remote_id:
        app.toast(f"#{job.id} has no remote id: it never reached the provider", "warning")
        return
    app.terminal.copy(job.remote_id)
    app.toast(f"copied #{job.id}'s remote id: {job.remote_id}")


def copy_prompt(app: Dashboard, job: Job) -> None:
    app.terminal.copy(job.prompt)
    app.toast(f"copied #{job.id}'s prompt: {fmt.excerpt(job.prompt, 60)}")


async def open_file(app: Dashboard, job: Job) -> None:
    if _copy_scp(app, job):
        return
    path = _file_of(app, job)
    if path is None:
        return
    if has_display():
        problem = await open_in_viewer(path)
        if problem is None:
            app.toast(f"opened {path.name}")
            return
        why = f"{problem}; "
    else:
        why = "no desktop here (SSH?); "
    copy_path(app, job, why)


# ---------------------------------------------------------------- prices


async def quote(app: Dashboard, ids: list[int]) -> None:
    jobs = await _jobs(app, ids)
    quotes = [await app.facade.quote(job.request) for job in jobs]
    if len(jobs) == 1:
        app.toast(f"{_label(jobs[0])}: {quotes[0].label()} now", timeout=10)
    elif jobs:
        total = sum(q.usd for q in quotes)
        app.toast(f"{len(jobs)} jobs would cost {fmt.money(total, any(q.estimate for q in quotes))}"
                  " now", timeout=10)


async def requeue(app: Dashboard, ids: list[int]) -> None:
    jobs = await _jobs(app, ids)
    ready = [job for job in jobs if job.state in REQUEUEABLE]
    skipped = [job for job in jobs if job not in ready]
    if skipped:  # one line for all of them: a bulk r over 40 rows is not 30 toasts
        listed = ", ".join(f"#{job.id} ({job.state})" for job in skipped[:LISTED])
        more = f" and {len(skipped) - LISTED} more" if len(skipped) > LISTED else ""
        app.toast(f"skipped {listed}{more}: only failed, expired, cancelled or unknown jobs "
                  "are re-queued", "warning")
    if not ready:
        return
    priced = [await app.facade.requeue_quote(job.id) for job in ready]
    total = sum(q.usd for _, q in priced)
    estimate = any(q.estimate for _, q in priced)
    lines = [f"{_label(job)}  {q.label()}" for job, q in priced]
    message = Text(_listing(lines) + "\n\nEach becomes a new paid job; the old rows stay.")
    noun = f"job #{ready[0].id}" if len(ready) == 1 else f"{len(ready)} jobs"
    if not await app.push_screen_wait(ConfirmScreen(
            f"Re-queue {noun} for {fmt.money(total, estimate)}?", message,
            f"Re-queue for {fmt.money(total, estimate)}")):
        app.toast("nothing re-queued")
        return
    new = [await app.facade.requeue(job.id, q) for job, q in priced]
    app.table.clear_marks(ids)
    app.show_jobs(await _jobs(app, [job.id for job in ready]))
    app.toast("re-queued " + ", ".join(f"#{old.id} as #{n.id}" for (old, _), n in
                                       zip(priced, new, strict=True)))


# ---------------------------------------------------------------- stopping and deleting


async def pick(app: Dashboard, ids: list[int], verdict: str) -> None:
    """Star or reject the selected / marked jobs; when every one already has that pick,
    clear it (the same key undoes it)."""
    jobs = await _jobs(app, ids)
    if not jobs:
        return
    wanted = None if all(j.pick == verdict for j in jobs) else verdict
    changed = [await app.facade.set_pick(j.id, wanted) for j in jobs]
    app.show_jobs(changed)
    app.table.clear_marks(ids)
    what = {"star": "starred", "reject": "rejected", None: "pick cleared on"}[wanted]
    app.toast(f"{what} {', '.join(f'#{j.id}' for j in changed[:LISTED])}"
              + (f" and {len(changed) - LISTED} more" if len(changed) > LISTED else ""))


async def cancel(app: Dashboard, ids: list[int]) -> None:
    jobs = await _jobs(app, ids)
    ready = [j for j in jobs if j.state.active or j.state == JobState.UNKNOWN]
    for job in jobs:
        if job not in ready:
            app.toast(f"#{job.id} is already {job.state}", "warning")
    sent = [j for j in ready if j.remote_id or j.state == JobState.UNKNOWN]
    if sent and not await app.push_screen_wait(ConfirmScreen(
            f"Stop tracking {len(ready)} job{'s' if len(ready) > 1 else ''}?",
            Text(_listing([_label(j) for j in ready]) + f"\n\n{len(sent)} already reached the "
                 "provider: it may still finish and charge for them, and wan-tui will not "
                 "download them."), "Stop tracking")):
        app.toast("nothing cancelled")
        return
    done = 0
    for job in ready:
        try:
            await app.facade.cancel(job.id)
            done += 1
        except EngineError as err:
            app.toast(f"#{job.id}: {err}", "warning")
    app.table.clear_marks(ids)
    if done:
        app.toast(f"cancelled {done} job{'s' if done > 1 else ''}")


def _deletable(app: Dashboard, job: Job) -> str | None:
    """Why the job's remote copy cannot be deleted, or None."""
    info = app.facade.provider_info(job.provider)
    if info is not None and not info.can_delete:
        return f"{info.label} has no delete endpoint: its videos expire by themselves"
    if not job.remote_id:
        return "never reached the provider: nothing to delete"
    if job.remote_deleted:
        return "its remote copy is already deleted"
    return None


async def delete(app: Dashboard, ids: list[int]) -> None:
    jobs = await _jobs(app, ids)
    ready = []
    for job in jobs:
        problem = _deletable(app, job)
        if problem:
            app.toast(f"#{job.id}: {problem}", "warning")
        else:
            ready.append(job)
    if not ready:
        return
    # A copy on another machine's disk (a team's history) is a whole copy all the same.
    hosts = {j.id: where.host for j in ready if (where := file_elsewhere(j)) is not None}
    lost = [j for j in ready
            if j.id not in hosts and not (j.file and Path(j.file).exists())]
    text = Text(_listing([_label(j) for j in ready]) + "\n\n")
    if lost:
        text.append(f"{len(lost)} of them have no local copy: those videos will be lost.\n",
                    style="bold red")
    if hosts:
        text.append(f"{len(hosts)} of them are kept on another machine only "
                    f"({', '.join(sorted(set(hosts.values())))}).\n")
    if any(j.state.active for j in ready):
        text.append("Jobs still running stop being tracked.\n")
    noun = f"job #{ready[0].id}" if len(ready) == 1 else f"{len(ready)} jobs"
    if not await app.push_screen_wait(ConfirmScreen(
            f"Delete the provider's copy of {noun}?", text, "Delete", danger=True)):
        app.toast("nothing deleted")
        return
    deleted = []
    for job in ready:
        try:
            deleted.append(await app.facade.delete_remote(job.id))
        except EngineError as err:
            app.toast(f"#{job.id}: {err}", "error")
    app.table.clear_marks(ids)
    app.show_jobs(deleted)
    if deleted:
        app.toast(f"deleted the remote copy of {len(deleted)} job"
                  f"{'s' if len(deleted) > 1 else ''}")


# ---------------------------------------------------------------- submitting


async def submit(app: Dashboard, result: SubmitResult | None) -> None:
    if not result or not result.requests:
        return
    app.submitting += 1
    try:
        jobs = await app.facade.submit(result.requests, result.quotes, result.sources)
    finally:
        app.submitting -= 1
    noun = f"#{jobs[0].id}" if len(jobs) == 1 else f"{len(jobs)} jobs"
    app.toast(f"submitted {noun} for {fmt.money(result.total_usd)}")
    if jobs:
        await app.show_new_jobs(jobs)


async def new_job(app: Dashboard, like: Job | None = None) -> None:
    from tui.app.screens.submit import SubmitScreen  # another module's screen: loaded on use

    initial = like.request if like is not None else None
    result = await app.push_screen_wait(SubmitScreen(app.facade, initial))
    if result and like is not None:  # linked to the job it was made from: `from:N`
        result = replace(result, sources=[like.id] * len(result.requests))
    await submit(app, result)


async def vary(app: Dashboard, ids: list[int]) -> None:
    """N variations of the selected or marked jobs: one form with the count and the total,
    then one batch of their own, each linked to the job it came from."""
    from tui.app.screens.vary import VaryScreen

    jobs = await _jobs(app, ids)
    if jobs:
        await submit(app, await app.push_screen_wait(VaryScreen(app.facade, jobs)))
        app.table.clear_marks(ids)


async def batch(app: Dashboard, path: Path | None = None) -> None:
    from tui.app.screens.batch import BatchScreen

    await submit(app, await app.push_screen_wait(BatchScreen(app.facade, path)))


async def batches(app: Dashboard) -> None:
    """List the batches; the one picked filters the table (its words go in the filter)."""
    from tui.app.screens.batches import ALL, BatchesScreen

    now = app.clock()
    summaries = await app.facade.batches(now)
    current = app.table.flt.batch
    if current is None:
        shown = await app.facade.batch_summary(None, now)
        current = shown.batch_id if shown else None
    chosen = await app.push_screen_wait(BatchesScreen(summaries, now, current))
    if chosen is None:
        return
    words = [w for w in app.filter_query().split() if not w.startswith(("batch:", "b:"))]
    if chosen != ALL:
        words.append(chosen)
    app.set_filter(" ".join(words))


# ---------------------------------------------------------------- quitting


async def quit_app(app: Dashboard) -> None:
    """Quitting asks nothing: the engine is another process and goes on with the jobs
    (the terminal gets one line saying so, tui/app/launch.py). Only the demo asks, since
    its folder and videos go with it."""
    if app.demo_folder is not None:
        videos = len(list(app.facade.config.output_dir.glob("*.mp4")))
        if not await app.push_screen_wait(ConfirmScreen(
                "Quit the demo?",
                f"Its simulator and engine stop and its folder {app.demo_folder} is deleted, "
                f"with the {videos} video{'s' if videos != 1 else ''} it made. Your own "
                "history is not touched.", "Quit")):
            return
    app.exit(0)
