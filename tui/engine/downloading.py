"""Bringing a finished video to disk, whole, and only then deleting the remote copy."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from tui.engine.events import JobChanged
from tui.engine.files import (
    DiskError,
    DownloadError,
    RejectedCopy,
    SavedFile,
    output_name,
    save_stream,
)
from tui.engine.schedule import backoff_delay
from tui.engine.steps import STOP, Step
from tui.jobs import Job, JobState
from tui.media.facts import moderation_hint, shortfalls
from tui.media.recipe import (
    RecipeError,
    job_facts,
    recipe_of,
    sidecar_for,
    sidecar_path,
    tags_of,
    write_sidecar,
)
from tui.providers.base import NotFound, Provider, ProviderError, Ready
from tui.store import LeaseLost

if TYPE_CHECKING:
    from tui.engine.parts import EngineParts

# A whole copy whose exact bytes failed a check this many times is what the provider has:
# fetching it again only spends the retrieve budget (issue #8: never fetched forever).
SAME_BYTES_LIMIT = 3


class Downloader:
    def __init__(self, engine: EngineParts, *, slots: int = 4) -> None:
        self.engine = engine
        self._slots = asyncio.Semaphore(slots)
        # The output folder's last refusal (read-only, full...), said once, not per job.
        self.disk_problem: str | None = None

    def destination(self, job: Job) -> Path:
        return self.engine.output_dir / output_name(job.id, job.model, job.prompt,
                                                    job.created_at)

    async def download(self, job: Job, ready: Ready | None) -> Step:
        engine = self.engine
        policy = engine.policy
        provider = engine.providers[job.provider]
        stream = ready.stream if ready else None
        dest = self.destination(job)
        last_error = ""
        async with self._slots:
            for attempt in range(1, policy.download_attempts + 1):
                try:
                    if stream is None:
                        if not job.result_url:  # fetched through the API, not a result URL
                            await engine.spend(job.provider, "retrieve", 2.0)
                        stream = await provider.open_download(job)
                    saved = await save_stream(stream, dest,
                                              tags_of(recipe_of(job), job_facts(job)))
                    break
                except DiskError as err:
                    # Fetching again cannot help until the user fixes the folder: the job
                    # waits in `queued` (resumable, its video still on the provider) and
                    # the other jobs go on. The next start or `watch` fetches it.
                    await engine.transition(job, JobState.QUEUED,
                                            f"{err}; `wan-tui watch` then fetches it")
                    if str(err) != self.disk_problem:
                        self.disk_problem = str(err)
                        engine.notice("error", self.disk_problem, job.id)
                    return STOP
                except NotFound:
                    await engine.transition(job, JobState.EXPIRED,
                                            "the video expired before it could be downloaded",
                                            error="expired before download",
                                            finished_at=engine.clock.now())
                    return STOP
                except RejectedCopy as err:
                    stream = None
                    last_error = str(err)
                    job = await self._rejected(job, err, attempt)
                    if job.state != JobState.DOWNLOADING:
                        return STOP
                    await engine.clock.sleep(backoff_delay(policy, attempt, None, engine.rng))
                except (DownloadError, ProviderError) as err:
                    stream = None
                    last_error = str(err)
                    await engine.store.update(
                        job.id, event=f"download attempt {attempt} failed: {err}; fetching again")
                    retry_after = err.retry_after if isinstance(err, ProviderError) else None
                    await engine.clock.sleep(backoff_delay(policy, attempt, retry_after,
                                                           engine.rng))
            else:
                # Never give up on a paid video: go back to polling, which finds it again.
                await engine.transition(job, JobState.QUEUED,
                                        f"download failed {policy.download_attempts} times "
                                        f"({last_error}); will try again later")
                await engine.clock.sleep(policy.max_interval_s)
                return None
        self.disk_problem = None
        detail = f"saved {saved.size} bytes to {saved.path}"
        for line in shortfalls(job.request, saved.video) if saved.video else ():
            detail += f" -- {line}"
        hint = moderation_hint(saved.video, saved.size)
        if hint:
            detail += f" -- {hint}"
        finished_at = engine.clock.now()
        detail += self._recipe_written(job, saved, finished_at)
        delete = engine.delete_after_download and provider.can_delete
        try:
            done = await engine.transition(job, JobState.DONE, detail, file=str(saved.path),
                                           bytes=saved.size, sha256=saved.sha256,
                                           video=saved.video, finished_at=finished_at,
                                           progress=1.0, delete_pending=delete)
        except LeaseLost:
            await self._orphaned(job, saved.path)
            raise
        if done is not None and delete:
            await self.delete_after_download(done, provider)
        return STOP

    async def _orphaned(self, job: Job, path: Path) -> None:
        """This engine downloaded a job whose lease another engine took meanwhile: the copy
        here is nobody's, unless it is the very file the job now names (a shared output
        folder: the same video under the same name, kept)."""
        current = await self.engine.store.get(job.id)
        if current is not None and current.file == str(path):
            return
        for leftover in (path, sidecar_path(path)):
            with contextlib.suppress(OSError):
                leftover.unlink()

    def _recipe_written(self, job: Job, saved: SavedFile, finished_at: float) -> str:
        """The sidecar beside the file (unless turned off); what the event says about the
        recipe. Before `done`, so a remote delete always follows a file with its recipe."""
        notes = ""
        if saved.tag_problem:
            notes += f" -- recipe not in the file: {saved.tag_problem}"
        if self.engine.write_sidecars:
            try:
                write_sidecar(saved.path, sidecar_for(
                    job, path=saved.path, size=saved.size, sha256=saved.sha256,
                    download_sha256=saved.download_sha256, video=saved.video,
                    finished_at=finished_at))
            except RecipeError as err:
                notes += f" -- {err}"
        return notes

    async def _rejected(self, job: Job, err: RejectedCopy, attempt: int) -> Job:
        """Count a whole copy that failed its check. The same bytes failing SAME_BYTES_LIMIT
        times settle the job as failed: the copy stays on disk as evidence (the job's file)
        and the remote copy is never deleted -- it may be the only good one."""
        engine = self.engine
        rejects = {**job.rejects, err.sha256: job.rejects.get(err.sha256, 0) + 1}
        seen = rejects[err.sha256]
        job = await engine.store.update(
            job.id, rejects=rejects,
            event=f"download attempt {attempt}: {err}; kept as {err.kept.name} "
                  f"(sha256 {err.sha256[:12]}, failed {seen}x)")
        if seen < SAME_BYTES_LIMIT:
            return job
        reason = (f"{err} (the same {err.size}-byte file failed {seen} times; kept as "
                  f"{err.kept}; the remote copy is left in place)")
        settled = await engine.transition(job, JobState.FAILED, reason, error=reason,
                                          file=str(err.kept), bytes=err.size,
                                          sha256=err.sha256, finished_at=engine.clock.now())
        engine.notice("error", f"job {job.id}: {err}; kept as {err.kept.name}", job.id)
        return settled or await engine.store.get(job.id) or job

    async def delete_after_download(self, job: Job, provider: Provider) -> None:
        # Only reached with a DONE row: the file is renamed, fsynced and checked.
        engine = self.engine
        policy = engine.policy
        for attempt in range(1, policy.download_attempts + 1):
            try:
                await engine.spend(job.provider, "retrieve", 1.0)
                await provider.delete(job)
                break
            except NotFound:
                break  # already gone: what we wanted
            except ProviderError as err:
                if not err.retryable or attempt == policy.download_attempts:
                    # delete_pending stays set: the next start tries again.
                    engine.notice("warning", f"job {job.id}: could not delete the remote copy "
                                  f"({err}); will retry on the next start", job.id)
                    return
                await engine.clock.sleep(backoff_delay(policy, attempt, err.retry_after,
                                                       engine.rng))
        updated = await engine.store.update(job.id, event="remote copy deleted after download",
                                            remote_deleted=True, delete_pending=False)
        engine.emit(JobChanged(updated))
