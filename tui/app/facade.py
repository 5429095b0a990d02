"""The dashboard's one door to the engine and the store (no Textual, no httpx, no SQL here).

Widgets and screens call these coroutines; everything below them stays testable headless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tui import format as fmt
from tui.app.batch_status import BatchSummary, from_rows, summarize
from tui.batchfile import BatchError, expand_line, read_batch, read_file
from tui.engine import (
    AllSettled,
    BalanceChanged,
    BudgetChanged,
    Engine,
    EngineError,
    EngineEvent,
    JobChanged,
    Notice,
)
from tui.engine.host import Follower
from tui.jobs import Job, JobRequest, JobState, ModelCaps, ValidationError
from tui.media import facts as media_facts
from tui.media.frames import Frame, frames, paced
from tui.media.probe import UndecodableError
from tui.providers.base import ProviderError, ProviderInfo, Quote
from tui.query import JobQuery
from tui.session import Session
from tui.store import BatchStats, Event, Spend
from tui.variations import Variation, variations
from tui.whereabouts import file_elsewhere

# What widgets and screens may name from below, handed over here: the app imports neither
# the engine nor the store itself (`lint-imports` checks it).
__all__ = [
    "SORTS", "AllSettled", "BalanceChanged", "BatchCheck", "BatchStats", "BudgetChanged",
    "BudgetStatus",
    "EngineError", "EngineEvent", "Event", "Facade", "Follower", "JobChanged", "JobQuery",
    "Notice", "Spend",
    "descending",
]

SORTS = ("created", "state", "model", "provider", "cost", "updated")


def descending(sort: str) -> bool:
    """Newest (or dearest) first, except by state: active jobs lead."""
    return sort != "state"


@dataclass(frozen=True)
class BudgetStatus:
    provider: str
    rate_class: str
    used: int
    limit: int
    waiting: int
    balance_usd: float | None


@dataclass
class BatchCheck:
    """A batch file read and checked line by line, with prices for the good lines."""

    path: Path
    lines: list[tuple[int, JobRequest | None, str]] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)
    error: str | None = None
    # Beside each entry of `lines`: a sweep's choice for it (`resolution=720p`), "" if none.
    variants: list[str] = field(default_factory=list)

    @property
    def sources(self) -> int:
        """How many lines of the file the requests came from (sweeps expand a line)."""
        return len({number for number, _, _ in self.lines})

    @property
    def ok(self) -> bool:
        return self.error is None and all(req is not None for _, req, _ in self.lines)

    @property
    def requests(self) -> list[JobRequest]:
        return [req for _, req, _ in self.lines if req is not None]

    @property
    def total(self) -> float:
        return sum(q.usd for q in self.quotes)


def numbered_lines(path: Path) -> list[tuple[int, str]]:
    """The request lines of a batch file (blank lines and # comments skipped), numbered."""
    text = read_file(Path(path)).decode("utf-8-sig", errors="replace")
    return [(n, raw.strip()) for n, raw in enumerate(text.splitlines(), start=1)
            if raw.strip() and not raw.strip().startswith("#")]


class Facade:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.engine: Engine = session.engine
        self.store = session.store
        # The dashboard's reads use their own connection (when the session has one), so a
        # page or a count never waits behind the engine's writes on the shared one.
        self.reader = session.reader or session.store
        self.config = session.config
        self.host = session.host
        self._takeover: asyncio.Task[None] | None = None
        self._engine_status: dict = {}

    # ------------------------------------------------------------ engine lifecycle

    def subscribe(self, listener: Callable[[EngineEvent], None]) -> Callable[[], None]:
        return self.engine.subscribe(listener)

    async def start(self) -> None:
        """Watch that an engine process follows the jobs: start one now if there is work
        and none runs, and again within a second whenever it ends or dies.

        (A session opened holding the lock -- tests, the dashboard benchmark's window-as-
        engine layout -- runs its engine here instead; the product never opens one so.)"""
        if self.host.lock.held:
            await self.host.claim()
            return
        self._takeover = asyncio.get_running_loop().create_task(
            self.host.keep_engine(), name="keep-engine")

    async def close(self) -> None:
        if self._takeover is not None:
            self._takeover.cancel()
            await asyncio.gather(self._takeover, return_exceptions=True)

    @property
    def is_engine(self) -> bool:
        return self.host.is_engine

    async def follower(self) -> Follower:
        """Who follows the jobs: this window, or which process since when (and, for a
        client, the engine's published budgets, which budgets() then shows)."""
        self._engine_status = await self.host.status()
        return self.host.follower(self._engine_status)

    async def quit_line(self) -> str:
        """What the engine still does once this window is gone (one line, for the
        terminal after the dashboard closes)."""
        counts = await self.reader.counts_by_state()
        active = sum(n for state, n in counts.items() if state.active)
        pid = self.host.lock.holder()
        if not active:
            return "wan-tui: no job is active" + (
                f"; the engine (pid {pid}) exits by itself when idle" if pid else "")
        jobs = f"{active} active job{'s' if active != 1 else ''}"
        if pid is None:
            return (f"wan-tui: nobody follows the {jobs}; `wan-tui watch` or the "
                    "dashboard starts the engine")
        # One line that fits 80 columns (`wan-tui watch` shows their progress).
        return f"wan-tui: engine pid {pid} still follows {jobs} (`wan-tui engine stop` ends it)"

    async def changes(self) -> list[Job]:
        """Rows that other processes (or this one's engine) committed since last asked."""
        return await self.host.changes()

    def stop_requested(self) -> bool:
        return self.host.stop_requested.is_set()

    # ------------------------------------------------------------ providers and models

    def now(self) -> float:
        """The time rows are stamped on: a team's database server's clock, so an age or
        an elapsed time is right on a machine whose own clock is off; else this one's."""
        return self.session.store.now()

    def providers(self) -> list[ProviderInfo]:
        return [p.info() for p in self.session.providers.values()]

    async def models(self, provider: str) -> list[ModelCaps]:
        return await self.engine.catalog.models(provider)

    async def validate(self, req: JobRequest) -> ModelCaps:
        """Raises ValidationError (one line) for anything the provider would refuse."""
        return await self.engine.catalog.validate(req)

    async def quote(self, req: JobRequest) -> Quote:
        return await self.engine.quote(req)

    async def submit(self, requests: Sequence[JobRequest], quotes: Sequence[Quote],
                     sources: Sequence[int | None] | None = None) -> list[Job]:
        """Record and start jobs whose price the user has seen (the engine, here or in
        another process, submits them). `sources`: the jobs they were made from."""
        return await self.host.add(list(requests), list(quotes), sources=sources)

    def takes_seed(self, provider: str) -> bool:
        info = self.provider_info(provider)
        return info is not None and info.takes_seed

    async def vary(self, jobs: Sequence[Job], count: int) -> tuple[list[Variation], list[Quote]]:
        """`count` variations of each job, checked against today's catalogue and priced
        (nothing is spent): ValidationError names the job whose request no longer passes."""
        planned = variations(jobs, count, self.takes_seed)
        checked: dict[int, JobRequest] = {}
        for job in jobs:
            try:
                checked[job.id] = await self.engine.catalog.prepare(job.request)
            except ValidationError as err:
                raise ValidationError(f"#{job.id}: {err}") from None
        planned = [Variation(v.source, replace(v.request, model=checked[v.source.id].model))
                   for v in planned]
        return planned, [await self.quote(v.request) for v in planned]

    async def check_batch(self, path: Path) -> BatchCheck:
        check = BatchCheck(path)
        try:
            lines = read_batch(path)
        except BatchError as err:
            if not str(err).startswith("line "):  # the file itself: unreadable, empty, big
                check.error = str(err)
                return check
            # A bad line: read them all, so every bad one is named next to the good ones.
            lines = []
            for number, text in numbered_lines(path):
                try:
                    lines.extend(expand_line(number, text))
                except BatchError as bad:
                    check.lines.append((number, None, str(bad)))
                    check.variants.append("")
        for line in lines:
            where = f" (sweep {line.variant})" if line.variant else ""
            try:
                prepared = await self.engine.catalog.prepare(line.request)
                check.lines.append((line.line, prepared, ""))
            except ValidationError as err:
                check.lines.append((line.line, None, f"line {line.line}: {err}{where}"))
            check.variants.append(line.variant)
        # By line number; a sweep's requests stay in the order they expanded (stable sort).
        order = sorted(range(len(check.lines)), key=lambda i: check.lines[i][0])
        check.lines = [check.lines[i] for i in order]
        check.variants = [check.variants[i] for i in order]
        if check.ok:
            try:
                check.quotes = [await self.quote(r) for r in check.requests]
            except ProviderError as err:
                check.error = f"could not price the batch: {err}"
        return check

    # ------------------------------------------------------------ job actions

    async def cancel(self, job_id: int) -> Job:
        return await self.host.cancel(job_id)

    async def delete_remote(self, job_id: int) -> Job:
        return await self.host.delete_remote(job_id)

    async def requeue_quote(self, job_id: int) -> tuple[Job, Quote]:
        job = await self.get(job_id)
        if job is None:
            raise ValidationError(f"no job {job_id}")
        return job, await self.quote(job.request)

    async def requeue(self, job_id: int, quote: Quote) -> Job:
        return await self.host.requeue(job_id, quote)

    async def set_pick(self, job_id: int, pick: str | None) -> Job:
        """Star, reject or clear a take. Not an engine action (nothing is sent anywhere):
        written straight to the history, where the web gallery sees it too."""
        return await self.store.set_pick(job_id, pick)

    # ------------------------------------------------------------ reading history

    async def page(self, flt: JobQuery, sort: str = "created", offset: int = 0,
                   limit: int = 200, reverse: bool = False) -> list[Job]:
        return await self.reader.list_jobs(flt, order=sort,
                                           descending=descending(sort) != reverse,
                                           limit=limit, offset=offset)

    async def count(self, flt: JobQuery) -> int:
        return await self.reader.count_jobs(flt)

    async def locate(self, flt: JobQuery, sort: str, job_id: int,
                     reverse: bool = False, *, seen: Job | None = None) -> int | None:
        """The job's row number in `page(flt, sort)` order, or None if the filter hides it.

        One count of the rows that sort before it (the store checks the filter, prompt
        words included, on the job itself first). `seen`: the job as the caller has it,
        enough to judge the filter's other parts without reading it again.
        """
        if not flt.empty:  # a job the filter hides is known without counting
            job = seen if seen is not None else await self.get(job_id)
            if job is None or not flt.admits(job):
                return None
        return await self.reader.position_of(job_id, flt, order=sort,
                                             descending=descending(sort) != reverse)

    def provider_info(self, name: str) -> ProviderInfo | None:
        provider = self.session.providers.get(name)
        return provider.info() if provider is not None else None

    async def get(self, job_id: int) -> Job | None:
        return await self.reader.get(job_id)

    async def events(self, job_id: int) -> list[Event]:
        return await self.reader.events(job_id)

    async def batches(self, now: float, limit: int = 50) -> list[BatchSummary]:
        """The newest batches, each summed up (the ETA only for those still running)."""
        out = []
        for stats in await self.reader.batches(limit):
            running = any(s.active and n for s, n in stats.counts.items())
            active = (from_rows(await self.reader.running_in_batch(stats.batch_id))
                      if running else [])
            out.append(summarize(stats, active, now))
        return out

    async def batch_summary(self, batch: int | None, now: float) -> BatchSummary | None:
        """The batch `batch` (None: the current one, the newest with jobs running)."""
        if batch is None:
            batch = await self.reader.current_batch()
        if batch is None:
            return None
        found = await self.reader.batches(batch=batch)
        if not found:
            return None
        active = from_rows(await self.reader.running_in_batch(batch))
        return summarize(found[0], active, now)

    async def counts(self) -> dict[JobState, int]:
        return await self.reader.counts_by_state()

    async def spend_today(self) -> float:
        """Charged plus maybe charged (`unknown` jobs at their quote) since midnight."""
        return (await self.spend_today_detail()).total_usd

    async def spend_today_detail(self) -> Spend:
        """Today's spend with the "maybe charged" part apart (unknown jobs, their count)."""
        midnight = time.mktime(time.localtime()[:3] + (0, 0, 0, 0, 0, -1))
        return await self.reader.spend_detail(midnight)

    def budgets(self) -> list[BudgetStatus]:
        if not self.is_engine:  # this process sends nothing: show the engine's own use
            return [BudgetStatus(b["provider"], b["rate_class"], b["used"], b["limit"], 0, None)
                    for b in self._engine_status.get("budgets", [])
                    if self.session.providers.get(b["provider"]) is not None
                    and self.session.providers[b["provider"]].configured]
        out = []
        for (provider, rate_class), budget in self.engine.budgets.items():
            if not self.session.providers[provider].configured:
                continue
            out.append(BudgetStatus(provider, rate_class, budget.used, budget.limit,
                                    budget.waiting, self.session.providers[provider].balance_usd))
        return out

    def poll_trouble(self) -> dict[int, str]:
        """Jobs whose latest polls failed: how many in a row and the last error, in short
        (the engine logs each as a "poll error N" event too)."""
        return {job_id: fmt.trouble_text(errors, last)
                for job_id, (errors, last) in self.engine.follower.failing.items()}

    def balances(self) -> dict[str, str]:
        """Each provider's balance as the provider itself reports it (`$12.34`,
        `90.50 DIEM`), for those that publish one and have answered."""
        if not self.is_engine:
            return {p: b["label"] for p, b in (self._engine_status.get("balances") or {}).items()
                    if isinstance(b, dict) and isinstance(b.get("label"), str)}
        return {p: b.label() for p, b in self.engine.balances.balances.items()}

    def halted(self) -> dict[str, str]:
        if not self.is_engine:
            return dict(self._engine_status.get("halted") or {})
        return dict(self.engine.halted)

    def destination(self, job: Job) -> Path:
        return self.engine.destination(job)

    # ------------------------------------------------------------ media (tui.media)

    @staticmethod
    def video_warnings(job: Job) -> list[str]:
        """What a finished job's ⚠ stands for: short of its request, or possibly moderated."""
        if job.state != JobState.DONE:
            return []
        return media_facts.warnings(job.request, job.video, job.bytes)

    def thumb_path(self, job_id: int) -> Path:
        return self.config.db_path.parent / "thumbs" / f"{job_id}.png"

    async def thumbnail(self, job: Job) -> Path | None:
        """The cached picture of a finished job's video (made once, in a worker thread),
        or None when there is no playable file."""
        if job.state != JobState.DONE or not job.file or file_elsewhere(job) is not None:
            return None  # another machine's file: a same-named one here is not its picture
        from tui.media.frames import thumbnail

        try:
            return await asyncio.to_thread(thumbnail, Path(job.file), self.thumb_path(job.id))
        except (UndecodableError, OSError):
            return None

    @staticmethod
    def play_frames(path: Path, width: int, height: int, fps: float | None,
                    stop: Callable[[], bool]) -> Iterator[Frame]:
        """The clip's frames at `width` x `height` pixels, when they are due (blocking:
        iterate it in a worker thread)."""
        return paced(frames(path, width, height, fps=fps, stop=stop))

    async def finished_page(self, flt: JobQuery, sort: str, limit: int) -> list[Job]:
        """Finished jobs with a file, under the table's filter (for the gallery)."""
        if flt.states is not None and JobState.DONE not in flt.states:
            return []
        done = replace(flt, states=(JobState.DONE,))
        return [j for j in await self.page(done, sort, 0, limit) if j.file]
