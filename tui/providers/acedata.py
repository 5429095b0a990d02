"""AceData Cloud adapter for Wan 2.6 (https://api.acedata.cloud).

Quirks handled here so nothing above has to know them:
- without `"async": true` the submit call blocks until the video is done (minutes), so we
  always send it and poll `/wan/tasks`;
- the official SDK fills unset fields with sample values: we send only what the user set;
- a task record's `response` is absent or partial while the task runs, so "finished" means a
  response with a final state (or an explicit `success: false`);
- `retrieve_batch` answers many tasks in one request: `poll_many` uses it;
- errors are `{"success": false, "error": {"code", "message"}, "trace_id"}`, mapped by code.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from tui.jobs import Job, JobRequest, ModelCaps, ValidationError, validate_request
from tui.providers.base import (
    AuthError,
    BadAnswer,
    ContentPolicy,
    Failed,
    Forbidden,
    Gone,
    InvalidRequest,
    NotFound,
    OptionSpec,
    Outcome,
    Processing,
    ProviderError,
    Quote,
    RateLimited,
    Ready,
    ServerError,
    Submitted,
    Unsupported,
    VideoStream,
    check_locally,
)
from tui.providers.http import (
    Answer,
    HttpProvider,
    error_for_status,
    rate_info_from_headers,
)

NOT_CONFIGURED = (
    "AceData Cloud is not configured: set ACEDATA_API_TOKEN or [providers.acedata] api_key"
)
NO_DELETE = (
    "AceData Cloud has no endpoint that deletes the video: its task 'delete' action only"
    " removes the history record, the CDN copy stays"
)

# Undocumented: how many ids one retrieve_batch takes. 50 keeps each answer small.
BATCH_LIMIT = 50

# The prompt limit is not documented for Wan 2.6 on AceData. 1500 is Alibaba's limit for
# Wan prompts; a longer prompt would be refused (or cut) by the model service anyway.
PROMPT_LIMIT = 1500

# ASSUMED prices in USD per second: AceData bills in credits and publishes its own credit
# pricing, which we cannot read. These are Alibaba Model Studio's list prices for Wan 2.6
# (the service AceData resells), so quotes are labelled estimates. The flash model is priced
# like the others on purpose: overestimating is the safe side of a --max-cost cap, and an
# unset resolution is priced as 1080P for the same reason.
ASSUMED_USD_PER_SECOND = {"480P": 0.05, "720P": 0.10, "1080P": 0.15}
UNSET_RESOLUTION_RATE = "1080P"

RESOLUTIONS = ("480P", "720P", "1080P")
SHOT_TYPES = ("single", "multi")
BASE_OPTIONS = ("size", "shot_type", "prompt_extend", "audio_url")
R2V = "wan2.6-r2v"
_SIZE = re.compile(r"^[1-9]\d{1,4}\*[1-9]\d{1,4}$")

# Task states seen across AceData's task APIs ("succeeded" is what its docs show); the
# others are accepted defensively. Anything else with no URL means "still running".
DONE_STATES = frozenset({"succeeded", "success", "completed", "complete", "finished", "done"})
FAILED_STATES = frozenset(
    {"failed", "failure", "error", "cancelled", "canceled", "timeout", "rejected"}
)
QUEUED_STATES = frozenset({"pending", "queued", "queuing", "waiting", "submitted", "created"})

_MODERATION = re.compile(r"moderat|sensitive|content|policy|violat|inappropriate|safety", re.I)


def _caps(model_id: str, name: str, model_type: str, *, image: bool, options: tuple) -> ModelCaps:
    return ModelCaps(
        provider="acedata",
        id=model_id,
        name=name,
        model_type=model_type,
        durations=("5s", "10s", "15s"),
        resolutions=RESOLUTIONS,
        aspect_ratios=(),  # AceData takes `size` ("W*H") instead of an aspect ratio
        audio=True,  # audio is on by default ("audio: ... The default value is true")
        audio_configurable=True,
        prompt_limit=PROMPT_LIMIT,
        negative_prompt_limit=500,
        requires_image=image,
        accepts_image=image,
        options=options,
    )


MODELS: tuple[ModelCaps, ...] = (
    _caps("wan2.6-t2v", "Wan 2.6 text-to-video", "text-to-video", image=False,
          options=BASE_OPTIONS),
    _caps("wan2.6-i2v", "Wan 2.6 image-to-video", "image-to-video", image=True,
          options=BASE_OPTIONS),
    _caps("wan2.6-i2v-flash", "Wan 2.6 image-to-video flash", "image-to-video", image=True,
          options=BASE_OPTIONS),
    # Reference-video-to-video: no first-frame image, a list of reference videos instead.
    _caps(R2V, "Wan 2.6 reference-to-video", "video", image=False,
          options=BASE_OPTIONS + ("reference_video_urls",)),
)
CAPS: dict[str, ModelCaps] = {caps.id: caps for caps in MODELS}


# ---------------------------------------------------------------- validation and mapping


def normalized(req: JobRequest) -> JobRequest:
    """Accept "720p" for AceData's "720P": batch files written for other providers use it."""
    if req.resolution and req.resolution.upper() != req.resolution:
        return replace(req, resolution=req.resolution.upper())
    return req


def validate(req: JobRequest) -> None:
    """Everything AceData would refuse, checked before any paid call. Raises ValidationError."""
    caps = CAPS.get(req.model)
    if caps is None:
        raise ValidationError(
            f"AceData Cloud has no model {req.model!r}; choose one of {', '.join(CAPS)}"
        )
    req = normalized(req)
    validate_request(req, caps)
    if req.image_url and not _is_http(req.image_url):
        raise ValidationError(
            "AceData fetches the image itself: give an http(s) URL, not a local file or data: URL"
        )
    _validate_options(req)


def _is_http(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) > 8




def _validate_options(req: JobRequest) -> None:
    opts = req.options
    size = opts.get("size")
    if size is not None and not (isinstance(size, str) and _SIZE.match(size)):
        raise ValidationError(f"AceData option size={size!r} must be WIDTH*HEIGHT, e.g. 1280*720")
    shot = opts.get("shot_type")
    if shot is not None and shot not in SHOT_TYPES:
        raise ValidationError(f"AceData option shot_type={shot!r} must be single or multi")
    extend = opts.get("prompt_extend")
    if extend is not None and not isinstance(extend, bool):
        raise ValidationError("AceData option prompt_extend must be true or false")
    audio_url = opts.get("audio_url")
    if audio_url is not None and not _is_http(audio_url):
        raise ValidationError("AceData option audio_url must be an http(s) URL")
    if req.model == R2V:
        refs = opts.get("reference_video_urls")
        if not isinstance(refs, list) or not refs or not all(_is_http(u) for u in refs):
            raise ValidationError(
                f"{R2V} needs option reference_video_urls: a non-empty list of http(s) URLs"
            )


def submit_body(req: JobRequest) -> dict[str, Any]:
    """The /wan/videos body. Always async; only the fields the user set."""
    req = normalized(req)
    body: dict[str, Any] = {
        "action": "text2video" if req.model == "wan2.6-t2v" else "image2video",
        "model": req.model,
        "prompt": req.prompt,
        "async": True,  # without it the call blocks until the video is finished
        "duration": req.duration_seconds,
    }
    for key in ("resolution", "negative_prompt", "audio", "image_url", "seed"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    for key, value in req.options.items():
        if value is not None:
            body[key] = value
    return body


def estimate(req: JobRequest) -> Quote:
    req = normalized(req)
    rate = ASSUMED_USD_PER_SECOND[req.resolution or UNSET_RESOLUTION_RATE]
    return Quote(usd=round(req.duration_seconds * rate, 4), estimate=True)


# ---------------------------------------------------------------- errors


def error_for(code: str | None, message: str, status: int, detail: dict[str, Any],
              retry_after: float | None) -> ProviderError:
    """AceData's error code → the taxonomy; the HTTP status decides for codes we don't know."""
    kw: dict[str, Any] = {"status": status, "detail": detail, "retry_after": retry_after}
    if code in ("bad_request", "token_mismatched", "api_not_implemented"):
        return InvalidRequest(message, **kw)
    if code == "invalid_token":
        return AuthError(message, **kw)
    if code == "forbidden":
        # The docs describe 403 as moderation; other refusals (account) stay Forbidden.
        cls = ContentPolicy if _MODERATION.search(message) else Forbidden
        return cls(message, **kw)
    if code == "too_many_requests":
        return RateLimited(message, **kw)
    if code in ("api_error", "timeout"):
        return ServerError(message, **kw)
    if status >= 400:
        return error_for_status(status, message, retry_after=retry_after, detail=detail)
    return ServerError(message, **kw)  # an error with HTTP 200: assume it may have been sent


def raise_for_answer(status: int, payload: Any, headers: Any, what: str) -> None:
    """Raise when the answer is an error (by HTTP status or by `success: false`)."""
    is_error_body = (
        isinstance(payload, dict) and payload.get("success") is False and "error" in payload
    )
    if status < 400 and not is_error_body:
        return
    err = payload.get("error") if isinstance(payload, dict) else None
    err = err if isinstance(err, dict) else {}
    code = str(err["code"]) if err.get("code") else None
    text = str(err.get("message") or "") or f"AceData answered HTTP {status}"
    detail: dict[str, Any] = {"code": code}
    if isinstance(payload, dict) and payload.get("trace_id"):
        detail["trace_id"] = payload["trace_id"]
    suffix = f"{code}, HTTP {status}" if code else f"HTTP {status}"
    message = f"{what}: {text} ({suffix})".replace("\n", " ")
    retry_after = rate_info_from_headers(headers).retry_after
    raise error_for(code, message, status, detail, retry_after)


# ---------------------------------------------------------------- task records


def _video_url(resp: dict[str, Any]) -> str | None:
    """The flat `video_url`, or `data.video_url` / `data[0].video_url` (newer answers)."""
    candidates: list[Any] = [resp.get("video_url")]
    data = resp.get("data")
    if isinstance(data, dict):
        candidates.append(data.get("video_url"))
    elif isinstance(data, list) and data and isinstance(data[0], dict):
        candidates.append(data[0].get("video_url"))
    return next((c for c in candidates if _is_http(c)), None)


def outcome_from_record(record: Any) -> Outcome:
    """One task record → an outcome. Raises BadAnswer for answers that make no sense."""
    if not isinstance(record, dict) or not (record.get("id") or record.get("response")):
        raise BadAnswer("AceData status: the answer holds no task record")
    resp = record.get("response")
    if not resp:
        return Processing()  # absent or empty while the task runs
    if not isinstance(resp, dict):
        raise BadAnswer("AceData status: the task's response is not an object")
    state = str(resp.get("state") or "").lower()
    if resp.get("success") is False or state in FAILED_STATES:
        return failed_from(resp, state)
    url = _video_url(resp)
    finished = state in DONE_STATES or (not state and bool(record.get("finished_at")))
    if url and (finished or not state):
        return Ready(url=url)
    if finished:
        raise BadAnswer("AceData status: the task finished but the answer has no video_url")
    return Processing(queued=state in QUEUED_STATES)


def failed_from(resp: dict[str, Any], state: str) -> Failed:
    err = resp["error"] if isinstance(resp.get("error"), dict) else {}
    code = str(err.get("code") or state or "failed")
    message = str(
        err.get("message") or resp.get("message") or "AceData reported the task failed"
    ).replace("\n", " ")
    retryable = code in ("api_error", "timeout") or "timeout" in code.lower()
    return Failed(code=code, message=message, retryable=retryable)


def record_id(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    resp = item["response"] if isinstance(item.get("response"), dict) else {}
    for value in (item.get("id"), item.get("task_id"), resp.get("task_id")):
        if isinstance(value, str) and value:
            return value
    return None


def chunks(items: list[Job], size: int = BATCH_LIMIT) -> list[list[Job]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# ---------------------------------------------------------------- the adapter


class AceDataProvider(HttpProvider):
    not_configured = NOT_CONFIGURED
    name = "acedata"
    label = "AceData Cloud"
    can_delete = False
    can_quote = False  # no quote endpoint: ASSUMED_USD_PER_SECOND
    takes_seed = True  # `seed`, an int, on every wan model
    batch_poll = True
    reports_estimate = False
    option_specs = (
        OptionSpec("size", hint="WIDTH*HEIGHT, e.g. 1280*720"),
        OptionSpec("shot_type", "choice", SHOT_TYPES),
        OptionSpec("prompt_extend", "bool"),
        OptionSpec("audio_url", hint="http(s) URL of an audio track"),
        OptionSpec("reference_video_urls", "list", hint="http(s) URLs, comma-separated"),
    )
    # Undocumented; modest guesses. Polls are batched, so retrieve is rarely the bottleneck.
    default_limits_per_minute = {"queue": 60, "retrieve": 120}

    def validate(self, req: JobRequest, caps: ModelCaps | None = None) -> None:
        """Our caps are static and authoritative, so `caps` is not needed (kept for the base)."""
        validate(req)

    def answer_error(self, answer: Answer, what: str) -> ProviderError | None:
        """An error by HTTP status or by `success: false`; a 2xx that is not JSON is bad."""
        payload = answer.payload()
        try:
            raise_for_answer(answer.status, payload, answer.headers, what)
        except ProviderError as err:
            return err
        if payload is None:
            return BadAnswer(f"{what}: the answer is {answer.content_type or 'empty'}, not JSON")
        return None

    async def _post(self, path: str, body: dict[str, Any], *, what: str,
                    rate_class: str) -> Any:
        """One API request → the parsed JSON answer (answer_error raised the errors)."""
        answer = await self.request("POST", path, body=body, what=what, rate_class=rate_class)
        return answer.payload()

    # ------------------------------------------------------------ the interface

    async def list_models(self) -> list[ModelCaps]:
        return list(MODELS)  # no model endpoint is documented

    async def quote(self, req: JobRequest) -> Quote:
        self.require_key()
        check_locally(validate, req)
        return estimate(req)

    async def submit(self, req: JobRequest) -> Submitted:
        self.require_key()
        check_locally(validate, req)  # nothing invalid ever goes on the wire
        payload = await self._post("/wan/videos", submit_body(req), what="submit",
                                   rate_class="queue")
        task_id = payload.get("task_id") if isinstance(payload, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise BadAnswer("AceData submit: the job was accepted but the answer has no task_id")
        return Submitted(remote_id=task_id)

    async def poll(self, job: Job) -> Outcome:
        if not job.remote_id:
            raise BadAnswer(f"AceData status: job {job.id} has no AceData task to ask about")
        try:
            payload = await self._post(
                "/wan/tasks", {"id": job.remote_id, "action": "retrieve"},
                what="status", rate_class="retrieve",
            )
        except NotFound:
            return Gone("AceData does not know this task (deleted or never created)")
        return outcome_from_record(payload)

    async def poll_many(self, jobs: list[Job]) -> dict[int, Outcome | ProviderError]:
        """One retrieve_batch request per BATCH_LIMIT jobs.

        A job missing from `items` gets a single retrieve of its own: the batch answer
        cannot tell "not indexed yet" from "unknown", the single one can (404 → Gone).
        """
        out: dict[int, Outcome | ProviderError] = {}
        for chunk in chunks([job for job in jobs if job.remote_id]):
            out.update(await self._poll_chunk(chunk))
        for job in jobs:
            if not job.remote_id:
                out[job.id] = BadAnswer(f"AceData status: job {job.id} has no task id")
        return out

    async def _poll_chunk(self, jobs: list[Job]) -> dict[int, Outcome | ProviderError]:
        body = {"ids": [job.remote_id for job in jobs], "action": "retrieve_batch"}
        try:
            payload = await self._post("/wan/tasks", body, what="batch status",
                                       rate_class="retrieve")
            items = payload.get("items") if isinstance(payload, dict) else None
            if not isinstance(items, list):
                raise BadAnswer("AceData batch status: the answer has no items list")
        except ProviderError as err:
            return {job.id: err for job in jobs}
        by_id = {record_id(item): item for item in items}
        out: dict[int, Outcome | ProviderError] = {}
        for job in jobs:
            item = by_id.get(job.remote_id)
            try:
                out[job.id] = (
                    outcome_from_record(item) if item is not None else await self.poll(job)
                )
            except ProviderError as err:
                out[job.id] = err
        return out

    async def open_download(self, job: Job) -> VideoStream:
        url = job.result_url
        if not url:  # the URL was never stored: ask for it again
            outcome = await self.poll(job)
            if isinstance(outcome, Gone):
                raise NotFound(f"AceData download: {outcome.message}")
            if not isinstance(outcome, Ready) or not outcome.url:
                raise BadAnswer("AceData download: the task has no finished video yet")
            url = outcome.url
        self.require_key()
        try:
            # No auth header: the video lives on a CDN, not the API.
            return await self.open_url(url, "download")
        except Forbidden as err:  # CDNs answer 403 for objects that are gone
            raise NotFound(err.message, status=err.status) from None

    async def delete(self, job: Job) -> None:
        raise Unsupported(NO_DELETE)
