"""Venice video API adapter (https://api.venice.ai/api/v1).

Quirks handled here so nothing above has to know them:
- "finished" is decided by the retrieve answer's Content-Type (video/mp4), never by `status`;
- some models answer JSON COMPLETED without bytes: then the queue's `download_url` is the
  source, and without one we give up after a bounded number of polls instead of looping;
- failures arrive as HTTP errors on retrieve (422 policy, 500 inference, 503 capacity);
- `average_execution_time` is a P80 in milliseconds, reported here in seconds.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

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
    HttpProvider,
    HttpVideoStream,
    error_for_status,
    is_video,
    open_url_stream,
    raise_for_transport,
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
    default_limits_per_minute = {"queue": 40, "retrieve": 120}

    not_configured = "Venice is not configured: set VENICE_API_KEY"
    default_timeout = 60.0  # a queue body with a data-URL image can be tens of MB

    def __init__(self, base_url: str, api_key: str | None, **kwargs: Any) -> None:
        super().__init__(base_url, api_key, **kwargs)
        self._completed_without_bytes: dict[str, int] = {}

    # ------------------------------------------------------------ low level

    async def _post(self, path: str, body: dict, *, rate_class: str, stream: bool = False,
                    what: str) -> httpx.Response:
        headers = self._headers()
        request = self._client.build_request(
            "POST", f"{self.base_url}{path}", json=body, headers=headers
        )
        try:
            response = await self._client.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise raise_for_transport(exc, f"Venice {what}") from exc
        self.observe_rate(rate_class, rate_info_from_headers(response.headers))
        if response.status_code >= 400:
            await self._raise_for_status(response, what)
        return response

    async def _raise_for_status(self, response: httpx.Response, what: str) -> None:
        try:
            raw = await response.aread()
        except httpx.TransportError:
            raw = b""
        finally:
            await response.aclose()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        message, detail = error_message(response.status_code, payload)
        raise error_for_status(
            response.status_code,
            f"{what}: {message}",
            retry_after=rate_info_from_headers(response.headers).retry_after,
            detail=detail,
        )

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            raise BadAnswer(f"{what}: Venice answered something that is not JSON") from None
        if not isinstance(payload, dict):
            raise BadAnswer(f"{what}: Venice answered an unexpected JSON shape")
        return payload

    # ------------------------------------------------------------ the interface

    async def list_models(self) -> list[ModelCaps]:
        try:
            # /models works without a key; send it when we have one.
            headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
            response = await self._client.get(
                f"{self.base_url}/models", params={"type": "video"}, headers=headers
            )
        except httpx.TransportError as exc:
            raise raise_for_transport(exc, "Venice models") from exc
        if response.status_code >= 400:
            await self._raise_for_status(response, "models")
        payload = self._json(response, "models")
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
            raise BadAnswer("models: Venice listed no video models")
        return out

    async def quote(self, req: JobRequest) -> Quote:
        response = await self._post(
            "/video/quote", quote_body(req), rate_class="queue", what="quote"
        )
        payload = self._json(response, "quote")
        value = payload.get("quote")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise BadAnswer("quote: Venice answered without a price")
        return Quote(float(value))

    async def submit(self, req: JobRequest) -> Submitted:
        response = await self._post("/video/queue", queue_body(req), rate_class="queue",
                                    what="submit")
        try:
            payload = self._json(response, "submit")
        except BadAnswer as err:
            err.sent = True  # accepted (200) but unreadable: maybe charged
            raise
        queue_id = payload.get("queue_id")
        if not isinstance(queue_id, str) or not queue_id:
            raise BadAnswer("submit: Venice accepted the job but sent no queue_id", sent=True)
        url = payload.get("download_url")
        return Submitted(queue_id, url if isinstance(url, str) and url else None)

    async def poll(self, job: Job) -> Outcome:
        body = {"model": job.model, "queue_id": job.remote_id}
        try:
            response = await self._post(
                "/video/retrieve", body, rate_class="retrieve", stream=True, what="status"
            )
        except NotFound:
            return Gone()
        except ProviderError as err:
            if err.status == 422:
                return Failed("content_policy", err.message, refunded=err.detail.get(
                    "credits_refunded"))
            raise
        if is_video(response):
            self._completed_without_bytes.pop(job.remote_id or "", None)
            return Ready(stream=HttpVideoStream(response))
        try:
            await response.aread()
        except httpx.TransportError as exc:
            raise raise_for_transport(exc, "Venice status") from exc
        finally:
            await response.aclose()
        payload = self._json(response, "status")
        return self._outcome_from_status(job, payload)

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
            return await open_url_stream(self._client, job.result_url, "Venice download")
        response = await self._post(
            "/video/retrieve",
            {"model": job.model, "queue_id": job.remote_id},
            rate_class="retrieve",
            stream=True,
            what="download",
        )
        if not is_video(response):
            await response.aread()
            await response.aclose()
            raise BadAnswer("download: Venice answered without the video; will poll again")
        return HttpVideoStream(response)

    async def delete(self, job: Job) -> None:
        response = await self._post(
            "/video/complete",
            {"model": job.model, "queue_id": job.remote_id},
            rate_class="retrieve",
            what="delete",
        )
        payload = self._json(response, "delete")
        if payload.get("success") is not True:
            raise BadAnswer("delete: Venice did not confirm the deletion")
