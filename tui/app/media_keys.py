"""What the media keys do: play the selected clip, show the gallery, open a job from it.

Kept out of app.py (which only binds the keys) so the dashboard's core stays small.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tui.app.screens.gallery import GALLERY_MAX, GalleryScreen
from tui.app.screens.player import PlayerScreen
from tui.jobs import Job, JobState
from tui.whereabouts import file_elsewhere

if TYPE_CHECKING:
    from tui.app.dashboard import Dashboard


def play(app: Dashboard, job: Job) -> None:
    if job.state != JobState.DONE or not job.file:
        app.toast(f"#{job.id} has no finished video to play", "warning")
        return
    where = file_elsewhere(job)
    if where is not None:  # a team's: the path names nothing here, or another file
        app.toast(f"#{job.id}'s video is on {where.host}, not on this machine: o / y copy "
                  "the scp line that fetches it", "warning")
        return
    path = Path(job.file)
    if not path.exists():
        app.toast(f"#{job.id}: {path} is missing on disk", "warning")
        return
    app.push_screen(PlayerScreen(job, path))


async def gallery(app: Dashboard) -> None:
    table = app.table
    jobs = await app.facade.finished_page(table.flt, table.sort_by, GALLERY_MAX)
    title = "finished jobs" if table.flt.empty else "finished jobs under the filter"

    def opened(job_id: int | None) -> None:
        if job_id is not None:
            app.spawn(open_job(app, job_id), "open from the gallery", [job_id])

    app.push_screen(GalleryScreen(jobs, app.facade.thumbnail, title), opened)


async def open_job(app: Dashboard, job_id: int) -> None:
    """Put the table's cursor on the job and show it in the detail pane."""
    await app.table.reload(keep=job_id)
    app.load_detail(job_id)
