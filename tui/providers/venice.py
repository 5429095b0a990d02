"""Venice video API adapter (https://api.venice.ai/api/v1).

Quirks handled here so nothing above has to know them:
- "finished" is decided by the retrieve answer's Content-Type (video/mp4), never by `status`;
- some models answer JSON COMPLETED without bytes: then the queue's `download_url` is the
  source, and without one we give up after a bounded number of polls instead of looping;
- failures arrive as HTTP errors on retrieve (422 policy, 500 inference, 503 capacity);
- `average_execution_time` is a P80 in milliseconds, reported here in seconds.
"""

from __future__ import annotations

from typing import Any

from tui.jobs import Deprecation, Job, JobRequest, ModelCaps, ValidationError, normalize_duration
from tui.providers.base import (
    BadAnswer,
    Failed,
    Gone,
    NotFound,
    Outcome,
    Processing,
    ProviderError,
    Quote,
    Ready,
    Submitted,
    VideoStream,
)
from tui.providers.http import (
    Answer,
    HttpPolicy,
    HttpProvider,
    error_for_status,
    is_video,
    rate_info_from_headers,
)

# How many JSON "COMPLETED" answers without a video we accept before calling the job failed.
COMPLETED_WITHOUT_BYTES_LIMIT = 5

_STATUS_HINTS = {
    400: "the request was refused as invalid",
    401: "Venice rejected the API key: check VENICE_API_KEY",
    402: "the Venice balance is too low: top up, then re-queue",
    403: "Venice refused access to this model",
    404: "media not found (expired or deleted)",
    409: "this model needs consent on the Venice website first",
    413: "the request is too large (use a smaller image or audio file)",
    422: "refused by the content policy",
    429: "rate limited by Venice",
    500: "Venice inference failed",
    503: "the model is at capacity",
}


def caps_from_model(entry: dict[str, Any]) -> ModelCaps:
    """One `/models` entry → ModelCaps. Defensive: missing lists mean "no choice"."""
    spec = entry.get("model_spec") or {}
    cons = spec.get("constraints") or {}
    model_type = str(cons.get("model_type") or "text-to-video")
    dep = spec.get("deprecation") or None
    durations = tuple(normalize_duration(str(d)) for d in cons.get("durations") or ())
    return ModelCaps(
        provider="venice",
        id=str(entry["id"]),
        name=str(spec.get("name") or entry["id"]),
        model_type=model_type,
        durations=durations,
        resolutions=tuple(str(r) for r in cons.get("resolutions") or ()),
        aspect_ratios=tuple(str(a) for a in cons.get("aspect_ratios") or ()),
        audio=bool(cons.get("audio", False)),
        audio_configurable=bool(cons.get("audio_configurable", False)),
        prompt_limit=int(cons.get("prompt_character_limit") or 2500),
        requires_image=model_type == "image-to-video",
        accepts_image=model_type in ("image-to-video", "video"),
        deprecation=Deprecation(dep.get("date"), dep.get("replacementModelId")) if dep else None,
    )


def queue_body(req: JobRequest) -> dict[str, Any]:
    """The queue body: only what the user set, with Venice's spelling."""
    body: dict[str, Any] = {
        "model": req.model,
        "prompt": req.prompt,
        "duration": normalize_duration(req.duration),
    }
    for key in ("negative_prompt", "resolution", "aspect_ratio", "audio", "image_url"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    for key, value in req.options.items():
        body[key] = value
    return body


def quote_body(req: JobRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": req.model, "duration": normalize_duration(req.duration)}
    for key in ("resolution", "aspect_ratio", "audio"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    return body


def error_message(status: int, payload: Any) -> tuple[str, dict[str, Any]]:
    """A one-line message from Venice's error shapes, plus the structured detail."""
    hint = _STATUS_HINTS.get(status, f"Venice answered HTTP {status}")
    detail: dict[str, Any] = {}
    text = ""
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):  # retrieve 422: {"error": {message, type, credits_refunded}}
            text = str(err.get("message") or "")
            detail.update({k: v for k, v in err.items() if k != "message"})
        elif err:
            text = str(err)
        details = payload.get("details")
        if isinstance(details, dict):
            fields = []
            for name, info in details.items():
                errs = info.get("_errors") if isinstance(info, dict) else None
                fields.append(f"{name}: {errs[0]}" if errs else name)
            if fields:
                text = f"{text} ({'; '.join(fields)})" if text else "; ".join(fields)
            detail["details"] = details
        for key in ("code", "suggested_prompt"):
            if key in payload:
                detail[key] = payload[key]
    message = f"{hint}: {text}" if text and text.lower() not in hint.lower() else hint
    return f"{message} (HTTP {status})".replace("\n", " "), detail


class VeniceProvider(HttpProvider):
    name = "venice"
    label = "Venice"
    reports_estimate = True
    # QueueVideoRequest (the published OpenAPI document) has no seed: a variation is the
    # same request again, rendered afresh.
    takes_seed = False
    default_limits_per_minute = {"queue": 40, "retrieve": 120}

    not_configured = "Venice is not configured: set VENICE_API_KEY"
    # A queue body with a data-URL image can be tens of MB: room to upload it.
    default_policy = HttpPolicy(deadline_s=120.0)

    def __init__(self, base_url: str, api_key: str | None, **kwargs: Any) -> None:
        super().__init__(base_url, api_key, **kwargs)
        self._completed_without_bytes: dict[str, int] = {}

    def answer_error(self, answer: Answer, what: str) -> ProviderError | None:
        if answer.status < 400:
            return None
        message, detail = error_message(answer.status, answer.payload())
        return error_for_status(
            answer.status, f"{what}: {message}",
            retry_after=rate_info_from_headers(answer.headers).retry_after, detail=detail,
        )

    async def _post(self, path: str, body: dict, *, what: str, rate_class: str = "retrieve",
                    video: bool = False) -> Answer:
        return await self.request("POST", path, body=body, what=what, rate_class=rate_class,
                                  keep_streaming=(lambda r: is_video(r.headers)) if video
                                  else None)

    # ------------------------------------------------------------ the interface

    async def list_models(self) -> list[ModelCaps]:
        # /models works without a key; ApiAuth sends it when we have one.
        answer = await self.request("GET", "/models", params={"type": "video"}, what="models",
                                    need_key=False)
        payload = answer.json_object("Venice models")
        out = []
        for entry in payload.get("data") or []:
            if not isinstance(entry, dict) or not entry.get("id"):
                continue
            if entry.get("type", "video") == "video":
                try:
                    out.append(caps_from_model(entry))
                except (TypeError, ValueError, ValidationError):
                    continue  # one odd entry must not hide the other hundred
        if not out:
            raise BadAnswer("Venice models: Venice listed no video models")
        return out

    async def quote(self, req: JobRequest) -> Quote:
        answer = await self._post("/video/quote", quote_body(req), what="quote",
                                  rate_class="queue")
        value = answer.json_object("Venice quote").get("quote")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise BadAnswer("Venice quote: Venice answered without a price")
        return Quote(float(value))

    async def submit(self, req: JobRequest) -> Submitted:
        answer = await self._post("/video/queue", queue_body(req), what="submit",
                                  rate_class="queue")
        # Accepted (2xx) but unreadable: BadAnswer keeps sent=True, maybe charged.
        payload = answer.json_object("Venice submit")
        queue_id = payload.get("queue_id")
        if not isinstance(queue_id, str) or not queue_id:
            raise BadAnswer("Venice submit: Venice accepted the job but sent no queue_id",
                            sent=True)
        url = payload.get("download_url")
        return Submitted(queue_id, url if isinstance(url, str) and url else None)

    async def poll(self, job: Job) -> Outcome:
        body = {"model": job.model, "queue_id": job.remote_id}
        try:
            answer = await self._post("/video/retrieve", body, what="status", video=True)
        except NotFound:
            return Gone()
        except ProviderError as err:
            if err.status == 422:
                return Failed("content_policy", err.message, refunded=err.detail.get(
                    "credits_refunded"))
            raise
        if answer.stream is not None:
            self._completed_without_bytes.pop(job.remote_id or "", None)
            return Ready(stream=answer.stream)
        return self._outcome_from_status(job, answer.json_object("Venice status"))

    def _outcome_from_status(self, job: Job, payload: dict[str, Any]) -> Outcome:
        status = str(payload.get("status") or "").upper()
        avg = payload.get("average_execution_time")
        spent = payload.get("execution_duration")
        estimate = float(avg) / 1000 if isinstance(avg, int | float) and avg > 0 else None
        elapsed = float(spent) / 1000 if isinstance(spent, int | float) and spent >= 0 else None
        if status == "COMPLETED":
            if job.result_url:
                return Ready(url=job.result_url)
            key = job.remote_id or ""
            seen = self._completed_without_bytes.get(key, 0) + 1
            self._completed_without_bytes[key] = seen
            if seen >= COMPLETED_WITHOUT_BYTES_LIMIT:
                self._completed_without_bytes.pop(key, None)
                return Failed(
                    "completed_without_video",
                    f"Venice said COMPLETED {seen} times but never sent the video",
                )
        progress = None
        if estimate and elapsed is not None:
            progress = min(elapsed / estimate, 0.99)
        return Processing(progress=progress, estimate_s=estimate, elapsed_s=elapsed,
                          queued=status in ("QUEUED", "PENDING"))

    async def open_download(self, job: Job) -> VideoStream:
        if job.result_url:
            self.require_key()
            return await self.open_url(job.result_url, "download")
        answer = await self._post("/video/retrieve",
                                  {"model": job.model, "queue_id": job.remote_id},
                                  what="download", video=True)
        if answer.stream is None:
            raise BadAnswer("Venice download: Venice answered without the video; will poll again")
        return answer.stream

    async def delete(self, job: Job) -> None:
        answer = await self._post("/video/complete",
                                  {"model": job.model, "queue_id": job.remote_id},
                                  what="delete")
        if answer.json_object("Venice delete").get("success") is not True:
            raise BadAnswer("Venice delete: Venice did not confirm the deletion")
