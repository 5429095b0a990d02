"""The served gallery: routes over the history, behind `guard.Guard`.

Starlette (on uvicorn) because it is small, typed, well kept, and already does what a video
page needs: FileResponse answers HTTP range requests (so a browser seeks without reading the
whole file) and a streaming response carries server-sent events. The history is read through
the same Store every other command uses, on this process's own event loop.

Files are found by job id only: a URL never names a path, and a job's file is served only
while the job is `done` and the file is where the history says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from tui.errors import WanError
from tui.jobs import PICKS, Job, JobState
from tui.query import JobQuery
from tui.store import Store
from tui.web import page
from tui.web.cards import card, finished_query
from tui.web.guard import Guard
from tui.whereabouts import file_elsewhere

log = logging.getLogger(__name__)

MAX_PAGE = 200
MAX_IDS = 200
CHANGE_WAIT_S = 5.0  # one wait for another process's commit (the store polls or is told)
SSE_KEEPALIVE_S = 15.0
# The gallery's orderings: the store's, newest first unless asked otherwise.
SORTS = ("created", "cost", "model", "provider", "updated")


class BadRequest(Exception):
    """A request the gallery cannot answer as asked: one line, a 4xx."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _problem(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def gallery_query(text: str) -> JobQuery:
    try:
        return finished_query(text)
    except WanError as exc:
        raise BadRequest(str(exc)) from None


def _job_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise BadRequest(f"{text[:40]!r} is not a job number (a job is reached by its #, "
                         "e.g. /video/42)", 404)
    return int(text)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{name}={raw[:20]!r}: give a whole number from {low} to {high}")
    return int(raw)


class Changes:
    """One watcher of the history for every open page: when another process commits (the
    engine finishing a job), the ids of the jobs that changed go to each page's queue."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queues: set[asyncio.Queue[list[int]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._since = 0.0

    def start(self) -> None:
        self._since = time.time()
        self._task = asyncio.create_task(self._watch(), name="gallery-changes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def publish(self, ids: list[int]) -> None:
        for queue in self.queues:
            queue.put_nowait(ids)

    async def _watch(self) -> None:
        version = await self.store.data_version()
        while True:
            try:
                # SQLite: PRAGMA data_version, polled; PostgreSQL: its NOTIFY, waited for.
                if not await self.store.wait_for_change(version, CHANGE_WAIT_S):
                    continue
                version = await self.store.data_version()
                # A little overlap: a row stamped just before the last look is sent again,
                # which a page merely redraws.
                jobs = await self.store.changed_since(self._since - 1.0)
            except WanError as exc:
                log.warning("gallery: reading changes failed: %s", exc)
                continue
            if jobs:
                self._since = max(j.updated_at for j in jobs)
                self.publish([j.id for j in jobs])

    @contextlib.contextmanager
    def subscribe(self) -> Any:
        queue: asyncio.Queue[list[int]] = asyncio.Queue()
        self.queues.add(queue)
        try:
            yield queue
        finally:
            self.queues.discard(queue)


def _video_url(job: Job) -> str:
    return f"/video/{job.id}"


def _poster_url(job: Job) -> str:
    return f"/poster/{job.id}.png"


def make_app(history: Store, *, token: str, port: int, thumbs_dir: Path,
             allowed_hosts: tuple[str, ...] = (), stopping: asyncio.Event | None = None
             ) -> Guard:
    """The gallery over an open history (its caller opens it first, so a history that
    cannot be opened is one line before anything listens, and closes it after), in its
    guard. `stopping`, once set, ends every event stream (the server waits for open
    connections before it stops, and a page's stream would otherwise stay open for ever)."""
    stop = stopping or asyncio.Event()
    thumbs = thumbs_dir
    state: dict[str, Any] = {}

    def store() -> Store:
        return history

    def cards_of(jobs: list[Job]) -> list[dict[str, Any]]:
        return [card(j, video_url=_video_url, poster_url=_poster_url) for j in jobs]

    async def finished(job_id: int) -> Job:
        job = await store().get(job_id)
        if job is None:
            raise BadRequest(f"there is no job {job_id}", 404)
        if job.state != JobState.DONE or not job.file:
            raise BadRequest(f"job {job_id} has no video (it is {job.state.value})", 404)
        where = file_elsewhere(job)
        if where is not None:
            raise BadRequest(f"job {job_id}'s video is on {where.host}, not on this machine: "
                             f"{where.scp}", 404)
        return job

    async def index(request: Request) -> Response:
        return HTMLResponse(page.render(title="wan-tui gallery",
                                        data={"mode": "live", "token": token}))

    async def jobs(request: Request) -> Response:
        query = gallery_query(request.query_params.get("q", ""))
        order = request.query_params.get("sort", "created")
        if order not in SORTS:
            raise BadRequest(f"sort={order[:20]!r}: sort by one of {', '.join(SORTS)}")
        descending = request.query_params.get("desc", "1") != "0"
        ids_text = request.query_params.get("ids")
        total = await store().count_jobs(query)
        if ids_text is not None:
            # Which of these changed jobs the page's filter admits, and where they go.
            parts = [p for p in ids_text.split(",") if p]
            if len(parts) > MAX_IDS:
                raise BadRequest(f"at most {MAX_IDS} ids at once")
            wanted = [_job_id(p) for p in parts]
            found: list[Job] = []
            positions: list[int] = []
            for job_id in wanted:
                position = await store().position_of(job_id, query, order=order,
                                                     descending=descending)
                job = await store().get(job_id) if position is not None else None
                if job is not None and position is not None:
                    found.append(job)
                    positions.append(position)
            return JSONResponse({"jobs": cards_of(found), "positions": positions,
                                 "total": total})
        limit = _int_param(request, "limit", 60, 1, MAX_PAGE)
        offset = _int_param(request, "offset", 0, 0, 10**9)
        page_jobs = await store().list_jobs(query, order=order, descending=descending,
                                            limit=limit, offset=offset)
        return JSONResponse({"jobs": cards_of(page_jobs), "total": total})

    async def one_job(request: Request) -> Response:
        job = await store().get(_job_id(request.path_params["job"]))
        if job is None:
            raise BadRequest(f"there is no job {request.path_params['job']}", 404)
        events = await store().events(job.id)
        return JSONResponse({
            "job": card(job, video_url=_video_url, poster_url=_poster_url),
            "events": [{"at": e.at, "state": e.state.value, "detail": e.detail}
                       for e in events]})

    async def set_pick(request: Request) -> Response:
        job_id = _job_id(request.path_params["job"])
        body = await request.body()
        if len(body) > 1000:
            raise BadRequest("the request body is too long", 413)
        try:
            pick = json.loads(body or b"{}").get("pick")
        except (ValueError, AttributeError):
            raise BadRequest('send JSON such as {"pick": "star"}') from None
        if pick not in (*PICKS, None):
            raise BadRequest(f"pick must be one of {', '.join(PICKS)} or null, not {pick!r}"[:200])
        if await store().get(job_id) is None:
            raise BadRequest(f"there is no job {job_id}", 404)
        job = await store().set_pick(job_id, pick)
        state["changes"].publish([job_id])  # our own write: data_version does not see it
        return JSONResponse({"job": card(job, video_url=_video_url, poster_url=_poster_url)})

    async def video(request: Request) -> Response:
        job = await finished(_job_id(request.path_params["job"]))
        path = Path(job.file or "")
        if not path.is_file():
            raise BadRequest(f"job {job.id}'s file is not on disk any more ({path.name})", 404)
        return FileResponse(path, media_type="video/mp4",
                            headers={"cache-control": "private, max-age=3600"})

    async def poster(request: Request) -> Response:
        name = request.path_params["name"]
        if not name.endswith(".png"):
            raise BadRequest("a poster is /poster/ID.png", 404)
        job = await finished(_job_id(name.removesuffix(".png")))
        from tui.media.frames import thumbnail
        from tui.media.probe import UndecodableError

        try:
            png = await asyncio.to_thread(thumbnail, Path(job.file or ""),
                                          thumbs / f"{job.id}.png")
        except (UndecodableError, OSError) as exc:
            raise BadRequest(f"job {job.id} has no picture: {exc}", 404) from None
        return FileResponse(png, media_type="image/png",
                            headers={"cache-control": "private, max-age=3600"})

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            with state["changes"].subscribe() as queue:
                yield "retry: 1000\n\n"
                ending = asyncio.ensure_future(stop.wait())
                try:
                    while not stop.is_set():
                        getting = asyncio.ensure_future(queue.get())
                        ready, _ = await asyncio.wait({getting, ending},
                                                      timeout=SSE_KEEPALIVE_S,
                                                      return_when=asyncio.FIRST_COMPLETED)
                        if getting not in ready:
                            getting.cancel()
                            if not stop.is_set():
                                yield ": keep-alive\n\n"
                            continue
                        ids = getting.result()
                        while not queue.empty():  # a burst of changes goes out as one event
                            ids = [*ids, *queue.get_nowait()]
                        unique = sorted(set(ids))
                        for start in range(0, len(unique), MAX_IDS):
                            chunk = unique[start:start + MAX_IDS]
                            yield f"event: jobs\ndata: {json.dumps({'ids': chunk})}\n\n"
                finally:
                    ending.cancel()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"x-accel-buffering": "no"})

    async def bad_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadRequest)
        return _problem(str(exc), exc.status)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _problem("nothing is served at this address", 404)

    async def wrong_method(request: Request, exc: Exception) -> Response:
        return _problem(f"{request.method} is not served at this address", 405)

    async def broken_store(request: Request, exc: Exception) -> Response:
        log.warning("gallery: %s", exc)
        return _problem(str(exc), 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state["changes"] = Changes(history)
        state["changes"].start()
        try:
            yield
        finally:
            await state["changes"].stop()

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/jobs", jobs),
            Route("/api/jobs/{job}", one_job),
            Route("/api/jobs/{job}/pick", set_pick, methods=["POST"]),
            Route("/video/{job}", video),
            Route("/poster/{name}", poster),
            Route("/events", events),
        ],
        exception_handlers={BadRequest: bad_request, 404: not_found, 405: wrong_method,
                            WanError: broken_store},
        lifespan=lifespan,
    )
    return Guard(app, token=token, port=port, hosts=allowed_hosts)
