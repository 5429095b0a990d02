"""The simulator's shared state and the helpers every simulated provider reuses.

One `SimState` holds the configuration, the jobs of all providers, the fault dice, the
per-key rate windows, the account balance and records that tests read (queue calls,
complete calls, request counters). Handlers run on the server's event loop; tests may read
from another thread, so the records are guarded by a lock and read as copies.

Prompt triggers (deterministic faults for tests; every provider honours them):

    [sim:policy]  once finished, the job fails on content policy (Venice: retrieve 422,
                  credits refunded; APIXO/AceData: their content-violation failure)
    [sim:fail]    once finished, the job fails with "inference failed" (Venice: 500, forever)
    [sim:expire]  once finished, the media is gone (Venice: retrieve 404, /files 404)
    [sim:cut]     the first download of the clip is cut off mid-body
    [sim:tiny]    the clip is under 100 KB (looks like a moderated, black result)
    [sim:black]   the clip is nearly black, of normal size (a moderated stand-in)
    [sim:less]    the clip falls short of the request: half the asked length, 320x180,
                  no audio track
    [sim:undecodable]  every copy of the clip has whole MP4 boxes but frames that do not
                  decode (the same bytes each time)

Submits whose answer is lost (Venice; each recorded in `queue_calls` with status 0 while
the answer is withheld):

    [sim:ambiguous]  accepted and charged, answered 500 (the "maybe charged" case)
    [sim:noanswer]   accepted and charged, never answered (the client dies or gives up)
    [sim:unheard]    never accepted nor charged, never answered

Clips otherwise have the asked length, resolution (16:9 unless an aspect ratio is asked)
and, when audio is asked for, a silent audio track; 320x180 when no resolution is asked.
They hold `video_seconds * 24` frames whatever their length (a 5 s clip of a 1 s budget
plays at 5 fps), so making them costs the same.

Triggers are case-insensitive and may appear anywhere in the prompt.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.sim.http import Request, Response, log

TRIGGERS = frozenset({"policy", "fail", "expire", "cut", "tiny", "black", "less",
                      "undecodable", "ambiguous", "noanswer", "unheard"})
_TRIGGER = re.compile(r"\[sim:([a-z]+)\]", re.IGNORECASE)

FAIL_POLICY = "content_policy"
FAIL_INFERENCE = "inference_failed"


def parse_triggers(prompt: str) -> frozenset[str]:
    """The known `[sim:NAME]` triggers in a prompt (unknown names are ignored)."""
    return frozenset(m.lower() for m in _TRIGGER.findall(prompt or "")) & TRIGGERS


_LINES = re.compile(r"^(\d{3,4})[pP]$")
_RATIO = re.compile(r"^(\d+):(\d+)$")
DEFAULT_SIZE = (320, 180)


def clip_shape(body: dict[str, Any], triggers: frozenset[str], budget_s: float
               ) -> dict[str, Any]:
    """render_clip's keyword arguments for what a queue body asked (any provider's body:
    Venice's top level or APIXO's `input`; duration "5s" or 5, resolution "720p"/"720P")."""
    inner = body.get("input")
    asked: dict[str, Any] = inner if isinstance(inner, dict) else body
    seconds = budget_s
    duration = asked.get("duration")
    if isinstance(duration, int | float | str) and not isinstance(duration, bool):
        match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*s?\s*$", str(duration))
        if match and float(match.group(1)) > 0:
            seconds = float(match.group(1))
    width, height = DEFAULT_SIZE
    lines = _LINES.match(str(asked.get("resolution") or ""))
    if lines:
        short = int(lines.group(1))
        ratio = _RATIO.match(str(asked.get("aspect_ratio") or ""))
        a, b = (int(ratio.group(1)), int(ratio.group(2))) if ratio else (16, 9)
        long_side = short * max(a, b) // max(1, min(a, b)) // 2 * 2  # even: yuv420p
        width, height = (long_side, short) if a >= b else (short, long_side)
    audio = asked.get("audio") is True
    if "less" in triggers:
        seconds, (width, height), audio = seconds / 2, DEFAULT_SIZE, False
    frames = max(1, round(budget_s * 24))
    fps = max(1, round(frames / seconds))
    return {"seconds": seconds, "width": width, "height": height, "fps": fps,
            "audio": audio, "tiny": "tiny" in triggers, "dark": "black" in triggers,
            "spoil": "undecodable" in triggers}


@dataclass
class Faults:
    rate_429: float = 0.0  # fraction of API requests answered 429 before doing anything
    rate_500: float = 0.0  # fraction of retrieves (status polls) answered 500
    rate_503: float = 0.0  # fraction of retrieves answered 503 (model at capacity)
    rate_404: float = 0.0  # fraction of jobs whose media expires: once finished, 404
    cut_rate: float = 0.0  # fraction of downloads cut off mid-body (each attempt drawn anew)
    slow_s: float = 0.0  # extra latency added to every answer
    queue_ambiguous: float = 0.0  # fraction of queue calls accepted AND charged but answered 500
    retrieve_limit_per_min: int = 120  # Venice retrieve budget per key (sliding 60 s window)
    queue_limit_per_min: int = 40
    # Venice blocks a key for 30 s after more than 20 failed requests in 30 s; 0 disables.
    failure_block_threshold: int = 20
    failure_block_s: float = 30.0


def _default_keys() -> dict[str, str]:
    return {"venice": "sim-venice-key", "apixo": "sim-apixo-key", "acedata": "sim-acedata-token"}


@dataclass
class SimConfig:
    mean_s: float = 120.0  # mean job run time, real seconds
    spread: float = 0.25  # run times drawn uniformly in mean*(1±spread)
    model_means: dict[str, float] = field(default_factory=dict)  # per-model override of mean_s
    seed: int | None = None  # RNG seed (deterministic fault draws for tests)
    balance_usd: float = 1000.0
    api_keys: dict[str, str] = field(default_factory=_default_keys)
    video_seconds: float = 2.0  # length of each generated clip
    faults: Faults = field(default_factory=Faults)
    data_dir: Path | None = None  # where clips are written (a temp dir if None)
    ledger_lag_s: float = 0.0  # a charge shows in the usage history this long after it
    tls: bool = False  # serve HTTPS with a certificate of a CA made for this run (tls.py)
    rtt_s: float = 0.0  # round-trip time the server adds (per connection and per request)
    # Record which local process sent each provider request (tests: tui/sim/senders.py).
    record_senders: bool = False


@dataclass
class SimJob:
    provider: str
    model: str
    remote_id: str
    prompt: str
    body: dict[str, Any]
    created_at: float  # state clock
    run_s: float
    price_usd: float = 0.0
    triggers: frozenset[str] = frozenset()
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # for /files/<token>.mp4
    video_path: Path | None = None
    sha256: str | None = None
    size: int | None = None
    deleted: bool = False
    expired: bool = False
    failed: str | None = None  # FAIL_POLICY / FAIL_INFERENCE once finished
    refunded: bool = False
    downloads: int = 0  # download attempts (whole or cut)
    cut_next: bool = False  # the next download is cut off ([sim:cut] sets it once)
    extra: dict[str, Any] = field(default_factory=dict)  # provider-specific bookkeeping

    @property
    def ready_at(self) -> float:
        return self.created_at + self.run_s

    def finished(self, now: float) -> bool:
        return now >= self.ready_at

    def elapsed(self, now: float) -> float:
        return max(0.0, now - self.created_at)


@dataclass(frozen=True)
class LedgerEntry:
    """One line of the provider's ledger (Venice's usage history): wall-clock time."""

    at: float
    sku: str
    amount: float  # negative: a charge; positive: a refund
    request_id: str | None
    currency: str = "USD"


@dataclass(frozen=True)
class Admission:
    """The outcome of a rate-limit check, with what the answer's headers should say."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # Unix seconds when the oldest request leaves the window
    retry_after: int = 0  # seconds, when refused
    blocked: bool = False  # refused by the failed-requests block rather than the window


class SlidingWindow:
    """At most `limit` requests in any `span` seconds."""

    def __init__(self, limit: int, span: float = 60.0) -> None:
        self.limit = limit
        self.span = span
        self.hits: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self.hits and self.hits[0] <= now - self.span:
            self.hits.popleft()

    def try_acquire(self, now: float) -> bool:
        self._trim(now)
        if len(self.hits) >= self.limit:
            return False
        self.hits.append(now)
        return True

    def remaining(self, now: float) -> int:
        self._trim(now)
        return max(0, self.limit - len(self.hits))

    def reset_in(self, now: float) -> float:
        """Seconds until the oldest request in the window leaves it (0 when empty)."""
        self._trim(now)
        return max(0.0, self.hits[0] + self.span - now) if self.hits else 0.0


class FailureBlock:
    """More than `threshold` failed requests in `span` seconds blocks the key `block_s`."""

    def __init__(self, threshold: int, span: float = 30.0, block_s: float = 30.0) -> None:
        self.threshold, self.span, self.block_s = threshold, span, block_s
        self.failures: deque[float] = deque()
        self.blocked_until = 0.0

    def record(self, now: float) -> None:
        if self.threshold <= 0:
            return
        self.failures.append(now)
        while self.failures and self.failures[0] <= now - self.span:
            self.failures.popleft()
        if len(self.failures) > self.threshold:
            self.blocked_until = now + self.block_s
            self.failures.clear()

    def blocked_for(self, now: float) -> float:
        return max(0.0, self.blocked_until - now)


class SimState:
    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        clock: Callable[[], float] | None = None,
        rate_clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config or SimConfig()
        # Job progress follows `clock` (tests may fake it); rate windows follow `rate_clock`,
        # real time by default, so faking job time does not also empty the budgets.
        self.clock: Callable[[], float] = clock or time.monotonic
        self.rate_clock: Callable[[], float] = rate_clock or time.monotonic
        self.rng = random.Random(self.config.seed)
        self.lock = threading.RLock()
        self.balance_usd = float(self.config.balance_usd)
        self.jobs: dict[str, SimJob] = {}
        self.by_token: dict[str, SimJob] = {}
        self.on_delete: Callable[[SimJob], None] | None = None
        self._queue_calls: list[tuple[str | None, bool, int]] = []
        self._senders: list[tuple[int | None, float]] = []
        self._complete_calls: list[tuple[str, float]] = []
        self._counters: dict[tuple[str, str, int], int] = {}
        self._windows: dict[tuple[str, str, str], SlidingWindow] = {}
        self._blocks: dict[tuple[str, str], FailureBlock] = {}
        self._renders: dict[str, asyncio.Future[None]] = {}
        self._render_slots: asyncio.Semaphore | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._own_data_dir = self.config.data_dir is None
        self.data_dir = self.config.data_dir or Path(tempfile.mkdtemp(prefix="wan-tui-sim-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.downloads = 0
        self.cut_downloads = 0
        self._ledger: list[LedgerEntry] = []
        self.can_consume: bool | None = None  # None: whether the balance is above zero

    @property
    def faults(self) -> Faults:
        return self.config.faults

    def close(self) -> None:
        """Remove the clips when the data dir is our own temp dir."""
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # ------------------------------------------------------------ records (thread-safe)

    @property
    def queue_calls(self) -> list[tuple[str | None, bool, int]]:
        """(remote_id or None, charged, answered status) for every queue/submit call."""
        with self.lock:
            return list(self._queue_calls)

    @property
    def complete_calls(self) -> list[tuple[str, float]]:
        """(remote_id, state clock) for every successful delete/complete call."""
        with self.lock:
            return list(self._complete_calls)

    def record_queue_call(self, remote_id: str | None, charged: bool, status: int) -> None:
        with self.lock:
            self._queue_calls.append((remote_id, charged, status))

    def record_complete_call(self, remote_id: str) -> None:
        with self.lock:
            self._complete_calls.append((remote_id, self.clock()))

    def record_sender(self, pid: int | None, at: float) -> None:
        with self.lock:
            self._senders.append((pid, at))

    @property
    def senders(self) -> list[tuple[int | None, float]]:
        """(pid or None if not found, wall time) of every provider request, when
        `SimConfig.record_senders` is on."""
        with self.lock:
            return list(self._senders)

    def count(self, provider: str, endpoint: str, status: int) -> None:
        with self.lock:
            key = (provider, endpoint, status)
            self._counters[key] = self._counters.get(key, 0) + 1

    def counter(self, provider: str, endpoint: str, status: int | None = None) -> int:
        """How many requests hit `endpoint` (with `status`, if given)."""
        with self.lock:
            return sum(
                n
                for (p, e, s), n in self._counters.items()
                if p == provider and e == endpoint and (status is None or s == status)
            )

    def job(self, remote_id: str) -> SimJob | None:
        with self.lock:
            return self.jobs.get(remote_id)

    def jobs_snapshot(self) -> list[SimJob]:
        with self.lock:
            return list(self.jobs.values())

    def stats(self) -> dict[str, Any]:
        """Plain JSON-able counters, for tests and benchmarks in other processes."""
        with self.lock:
            endpoints: dict[str, dict[str, int]] = {}
            by_status: dict[str, int] = {}
            for (provider, endpoint, status), n in sorted(self._counters.items()):
                endpoints.setdefault(f"{provider} {endpoint}", {})[str(status)] = n
                by_status[str(status)] = by_status.get(str(status), 0) + n
            return {
                "requests": sum(self._counters.values()),
                "rate_limited": by_status.get("429", 0),
                "by_status": by_status,
                "endpoints": endpoints,
                "jobs": len(self.jobs),
                "queue_calls": len(self._queue_calls),
                "charged": sum(1 for _, charged, _ in self._queue_calls if charged),
                "complete_calls": len(self._complete_calls),
                "downloads": self.downloads,
                "cut_downloads": self.cut_downloads,
                "balance_usd": round(self.balance_usd, 6),
            }

    # ------------------------------------------------------------ auth

    def authorized(self, provider: str, req: Request) -> str | None:
        """The request's bearer token if it is `provider`'s configured key, else None."""
        token = req.bearer()
        expected = self.config.api_keys.get(provider)
        return token if token is not None and token == expected else None

    # ------------------------------------------------------------ money

    def charge(self, usd: float) -> bool:
        """Deduct `usd` if the balance covers it."""
        with self.lock:
            if self.balance_usd + 1e-9 < usd:
                return False
            self.balance_usd -= usd
            return True

    def refund(self, job: SimJob) -> bool:
        """Give the job's price back, once; True when this call did."""
        with self.lock:
            if job.refunded:
                return False
            job.refunded = True
            self.balance_usd += job.price_usd
            return True

    def write_ledger(self, sku: str, amount: float, request_id: str | None) -> None:
        """Record a charge (negative amount) or a refund, stamped with the wall clock."""
        with self.lock:
            self._ledger.append(LedgerEntry(time.time(), sku, round(amount, 6), request_id))

    def ledger(self) -> list[LedgerEntry]:
        """The entries the ledger shows by now (`ledger_lag_s` hides the newest)."""
        shown_until = time.time() - self.config.ledger_lag_s
        with self.lock:
            return [e for e in self._ledger if e.at <= shown_until]

    def spendable(self) -> bool:
        if self.can_consume is not None:
            return self.can_consume
        with self.lock:
            return self.balance_usd > 0

    # ------------------------------------------------------------ jobs

    def draw_run_s(self, model: str) -> float:
        mean = self.config.model_means.get(model, self.config.mean_s)
        spread = self.config.spread
        return max(0.0, self.rng.uniform(mean * (1 - spread), mean * (1 + spread)))

    def p80_s(self, model: str) -> float:
        """The 80th percentile of the uniform run-time draw: what Venice reports as average."""
        mean = self.config.model_means.get(model, self.config.mean_s)
        return mean * (1 + 0.6 * self.config.spread)

    def new_job(
        self, provider: str, model: str, prompt: str, body: dict[str, Any], price_usd: float
    ) -> SimJob:
        """Create and register a job: run time drawn, triggers parsed, expiry drawn."""
        triggers = parse_triggers(prompt)
        job = SimJob(
            provider=provider,
            model=model,
            remote_id=str(uuid.uuid4()),
            prompt=prompt,
            body=body,
            created_at=self.clock(),
            run_s=self.draw_run_s(model),
            price_usd=price_usd,
            triggers=triggers,
            cut_next="cut" in triggers,
        )
        job.expired = "expire" in triggers or self.draw(self.faults.rate_404)
        if "policy" in triggers:
            job.failed = FAIL_POLICY
        elif "fail" in triggers:
            job.failed = FAIL_INFERENCE
        with self.lock:
            self.jobs[job.remote_id] = job
            self.by_token[job.token] = job
        return job

    def delete_media(self, job: SimJob) -> None:
        """Run the on_delete hook, then drop the clip: later fetches answer 404."""
        if job.deleted:
            return
        if self.on_delete is not None:
            self.on_delete(job)
        job.deleted = True
        if job.video_path is not None:
            job.video_path.unlink(missing_ok=True)

    def media_available(self, job: SimJob) -> bool:
        """Finished successfully and neither deleted nor expired."""
        return job.finished(self.clock()) and not job.deleted and not job.expired and not job.failed

    # ------------------------------------------------------------ fault dice

    def draw(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def draw_429(self) -> int | None:
        """Retry-After seconds (1..3) if this request gets a random 429, else None."""
        if self.draw(self.faults.rate_429):
            return self.rng.randint(1, 3)
        return None

    def draw_retrieve_error(self) -> int | None:
        """500 or 503 if this status poll hits a random server fault, else None."""
        if self.draw(self.faults.rate_500):
            return 500
        if self.draw(self.faults.rate_503):
            return 503
        return None

    def take_cut(self, job: SimJob, size: int) -> int | None:
        """Where to cut this download of `job` off, or None to send it whole."""
        cut = job.cut_next or self.draw(self.faults.cut_rate)
        job.cut_next = False
        if not cut or size < 2:
            return None
        return self.rng.randint(size // 4, max(size // 4, (3 * size) // 4))

    # ------------------------------------------------------------ rate limits

    def admit(self, provider: str, key: str, cls: str, limit: int) -> Admission:
        """Spend one request of `key`'s `cls` budget, unless blocked or over the limit."""
        now = self.rate_clock()
        with self.lock:
            window = self._window(provider, key, cls, limit)
            block = self._blocks.get((provider, key))
            blocked = block.blocked_for(now) if block else 0.0
            if blocked > 0:
                return self._admission(window, now, False, math.ceil(blocked), blocked=True)
            if not window.try_acquire(now):
                wait = max(1, math.ceil(window.reset_in(now)))
                return self._admission(window, now, False, wait)
            return self._admission(window, now, True, 0)

    def peek(self, provider: str, key: str, cls: str, limit: int) -> Admission:
        """The budget as it stands, spending nothing (for answers outside a budget)."""
        now = self.rate_clock()
        with self.lock:
            return self._admission(self._window(provider, key, cls, limit), now, True, 0)

    def record_result(self, provider: str, key: str, status: int) -> None:
        """Feed the failed-requests block: 4xx/5xx answers count, 429s do not."""
        if status < 400 or status == 429:
            return
        f = self.faults
        with self.lock:
            block = self._blocks.get((provider, key))
            if block is None:
                block = FailureBlock(f.failure_block_threshold, 30.0, f.failure_block_s)
                self._blocks[(provider, key)] = block
            block.record(self.rate_clock())

    def _window(self, provider: str, key: str, cls: str, limit: int) -> SlidingWindow:
        window = self._windows.get((provider, key, cls))
        if window is None or window.limit != limit:
            window = SlidingWindow(limit) if window is None else _resized(window, limit)
            self._windows[(provider, key, cls)] = window
        return window

    def _admission(
        self, window: SlidingWindow, now: float, allowed: bool, retry: int, blocked: bool = False
    ) -> Admission:
        reset_at = math.ceil(time.time() + window.reset_in(now))
        return Admission(allowed, window.limit, window.remaining(now), reset_at, retry, blocked)

    # ------------------------------------------------------------ clips

    def clip_path(self, job: SimJob) -> Path:
        return self.data_dir / f"{job.provider}-{job.remote_id}.mp4"

    async def ensure_clip(self, job: SimJob) -> Path:
        """Render the job's clip once (in a thread); concurrent callers share the render."""
        if job.video_path is not None and job.sha256 is not None:
            return job.video_path
        pending = self._renders.get(job.remote_id)
        if pending is None:
            pending = asyncio.ensure_future(self._render(job))
            self._renders[job.remote_id] = pending
        try:
            await asyncio.shield(pending)
        finally:
            if pending.done():
                self._renders.pop(job.remote_id, None)
        assert job.video_path is not None
        return job.video_path

    def render_when_ready(self, job: SimJob) -> None:
        """Render the clip in the background when the job finishes, so the first fetch
        does not pay for the encode (it would distort 'ready to on disk' measurements).
        Jobs that will never serve a clip are skipped; a fetch renders on demand anyway.
        """
        if job.failed or job.expired:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, job.ready_at - self.clock())
        self._timers[job.remote_id] = loop.call_later(delay, self._start_background_render, job)

    def _start_background_render(self, job: SimJob) -> None:
        self._timers.pop(job.remote_id, None)
        if job.deleted or job.video_path is not None:
            return
        task = asyncio.ensure_future(self.ensure_clip(job))
        task.add_done_callback(_log_render_failure)

    async def drain(self) -> None:
        """Cancel renders not yet started and wait for running ones (the server is stopping),
        so no encoder thread writes into a data dir that is about to be removed."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._renders:
            await asyncio.gather(*self._renders.values(), return_exceptions=True)

    async def _render(self, job: SimJob) -> None:
        from tui.sim.video import render_clip  # Pillow/PyAV load on first render, not import

        if self._render_slots is None:
            # Two encoders at once on this 2-core budget keep each render short.
            self._render_slots = asyncio.Semaphore(2)
        path = self.clip_path(job)
        async with self._render_slots:
            size, digest = await asyncio.to_thread(
                render_clip,
                path,
                prompt=job.prompt,
                job_id=job.remote_id,
                **clip_shape(job.body, job.triggers, self.config.video_seconds),
            )
        job.video_path, job.size, job.sha256 = path, size, digest
        if job.deleted:  # deleted while it was rendering: do not leave the file behind
            path.unlink(missing_ok=True)

    async def clip_response(
        self, job: SimJob, *, after_send: Callable[[], None] | None = None
    ) -> Response:
        """200 video/mp4 streaming the job's clip, cut off when a fault says so."""
        path = await self.ensure_clip(job)
        size = job.size or path.stat().st_size
        cut_at = self.take_cut(job, size)
        with self.lock:
            job.downloads += 1
            self.downloads += 1
            if cut_at is not None:
                self.cut_downloads += 1
        headers = {"content-type": "video/mp4"}
        return Response(200, headers, file=path, cut_at=cut_at, after_send=after_send)

    def file_url(self, base: str, job: SimJob) -> str:
        """Where `job`'s clip can be fetched without auth (the server's /files route)."""
        return f"{base}/files/{job.token}.mp4"


def _log_render_failure(task: asyncio.Future[Path]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background render failed", exc_info=task.exception())


def _resized(window: SlidingWindow, limit: int) -> SlidingWindow:
    """Keep the history when a test changes a limit on a running server."""
    fresh = SlidingWindow(limit, window.span)
    fresh.hits = window.hits
    return fresh
