"""Venice video API adapter (https://api.venice.ai/api/v1).

Quirks handled here so nothing above has to know them:
- "finished" is decided by the retrieve answer's Content-Type (video/mp4), never by `status`;
- some models answer JSON COMPLETED without bytes: then the queue's `download_url` is the
  source, and without one we give up after a bounded number of polls instead of looping;
- failures arrive as HTTP errors on retrieve (422 policy, 500 inference, 503 capacity);
- `average_execution_time` is a P80 in milliseconds, reported here in seconds;
- models marked `offline` are left out of the list (nothing could be submitted to them).

The bodies and answers follow Venice's published OpenAPI document of version
`CONTRACT_VERSION` (tests/contracts/ holds that copy; tests/test_venice_contract.py checks
every body built here, and the simulator's answers, against it).
"""

from __future__ import annotations

from datetime import UTC, datetime
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
from tui.providers.billing import Balance, Charge, Ledger
from tui.providers.http import (
    Answer,
    HttpPolicy,
    HttpProvider,
    error_for_status,
    is_video,
    rate_info_from_headers,
)

CONTRACT_VERSION = "20260814.153445"  # info.version of the OpenAPI document followed

# How many JSON "COMPLETED" answers without a video we accept before calling the job failed.
COMPLETED_WITHOUT_BYTES_LIMIT = 5

_STATUS_HINTS = {
    400: "the request was refused as invalid",
    401: "Venice rejected the API key: check VENICE_API_KEY",
    402: "the Venice balance is too low: top up, then re-queue",
    403: "Venice refused access to this model",
    404: "media not found (expired or deleted)",
    409: "this model needs your consent first",
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
        deprecation=Deprecation(dep.get("date"), dep.get("replacementModelId"),
                                auto_remap=dep.get("autoRemap") is True) if dep else None,
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


def retrieve_body(job: Job) -> dict[str, Any]:
    """Retrieve and complete take these two fields and no other."""
    return {"model": job.model, "queue_id": job.remote_id}


complete_body = retrieve_body


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
        if isinstance(err, dict):  # retrieve 422 {message, type, credits_refunded, ...}, 409
            text = str(err.get("message") or "")
            detail.update({k: v for k, v in err.items() if k != "message"})
            text = _refusal_text(status, text, err, payload)
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


def _refusal_text(status: int, text: str, err: dict[str, Any], payload: dict[str, Any]) -> str:
    """What a content-policy refusal or a consent demand leaves the user to do, said whole:
    whether the credits came back, which model Venice recommends, where to consent."""
    if status == 409:  # needs_consent: Venice's own message only repeats the hint
        where = payload.get("docs_url")
        flow = payload.get("consent_flow")
        kind = f" ({flow})" if isinstance(flow, str) and flow else ""
        at = f"at {where}" if isinstance(where, str) and where else "on the Venice website"
        return f"give it{kind} {at}, then re-queue"
    if status == 422:
        refunded = err.get("credits_refunded")
        bits = [text.rstrip(". ")] if text else []
        if refunded is True:
            bits.append("credits refunded")
        elif refunded is False:
            bits.append("credits NOT refunded")
        recommended = err.get("recommended_model")
        if isinstance(recommended, str) and recommended and recommended not in text:
            bits.append(f"Venice recommends {recommended}")
        return "; ".join(bits)
    return text


def parse_time(text: Any) -> float | None:
    """An ISO 8601 instant of the ledger ("2026-06-15T19:05:10.504Z") as Unix time."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def iso_time(unix: float) -> str:
    """Unix time as the ledger's query wants it: ISO 8601 UTC with a "Z"."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def balance_from(payload: dict[str, Any]) -> Balance:
    raw = payload.get("balances")
    balances: dict[str, Any] = raw if isinstance(raw, dict) else {}

    def number(value: Any) -> float | None:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else None

    can = payload.get("canConsume")
    if not isinstance(can, bool):
        raise BadAnswer("Venice balance: the answer does not say whether the key can spend")
    currency = payload.get("consumptionCurrency")
    return Balance(can, currency if isinstance(currency, str) else None,
                   usd=number(balances.get("usd")), diem=number(balances.get("diem")))


def charge_from(entry: Any) -> Charge | None:
    """One usage-history entry, or None for one that is not a readable charge."""
    if not isinstance(entry, dict):
        return None
    at = parse_time(entry.get("timestamp"))
    amount = entry.get("amount")
    if at is None or not isinstance(amount, int | float) or isinstance(amount, bool):
        return None
    details = entry.get("inferenceDetails")
    rid = details.get("requestId") if isinstance(details, dict) else None
    return Charge(at, str(entry.get("sku") or ""), float(amount),
                  str(entry.get("currency") or ""), rid if isinstance(rid, str) and rid else None)


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
            spec = entry.get("model_spec")
            if isinstance(spec, dict) and spec.get("offline") is True:
                continue  # Venice says it is down: a job for it could only fail
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
        answer = await self._post("/video/queue", queue_body(req),
                                  what=f"submit of {req.model}", rate_class="queue")
        # Accepted (2xx) but unreadable: BadAnswer keeps sent=True, maybe charged.
        payload = answer.json_object("Venice submit")
        queue_id = payload.get("queue_id")
        if not isinstance(queue_id, str) or not queue_id:
            raise BadAnswer("Venice submit: Venice accepted the job but sent no queue_id",
                            sent=True)
        url = payload.get("download_url")
        return Submitted(queue_id, url if isinstance(url, str) and url else None)

    async def poll(self, job: Job) -> Outcome:
        try:
            answer = await self._post("/video/retrieve", retrieve_body(job), what="status",
                                      video=True)
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
        answer = await self._post("/video/retrieve", retrieve_body(job), what="download",
                                  video=True)
        if answer.stream is None:
            raise BadAnswer("Venice download: Venice answered without the video; will poll again")
        return answer.stream

    async def delete(self, job: Job) -> None:
        answer = await self._post("/video/complete", complete_body(job), what="delete")
        if answer.json_object("Venice delete").get("success") is not True:
            raise BadAnswer("Venice delete: Venice did not confirm the deletion")

    # ------------------------------------------------------------ billing

    has_ledger = True
    LEDGER_PAGE = 1000  # the most the document allows
    LEDGER_PAGES = 50  # a window is minutes wide; more pages than this is not one

    async def balance(self) -> Balance:
        answer = await self.request("GET", "/billing/balance", what="balance")
        found = balance_from(answer.json_object("Venice balance"))
        if found.usd is not None:
            self.balance_usd = found.usd
        return found

    async def ledger(self, start: float, end: float) -> Ledger:
        """Charges in [start, end), walking the cursor pages, and whether the ledger has
        recorded anything from `end` on (one small page more)."""
        charges: list[Charge] = []
        params: dict[str, str] = {"startTimestamp": iso_time(start),
                                  "endTimestamp": iso_time(end),
                                  "pageSize": str(self.LEDGER_PAGE)}
        for _ in range(self.LEDGER_PAGES):
            page = await self._ledger_page(params)
            charges += [c for c in map(charge_from, page.get("data") or ()) if c is not None]
            cursor = page.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
            params = {"cursor": cursor}  # the cursor carries the filters; nothing else
        else:
            raise BadAnswer(f"Venice usage history: more than {self.LEDGER_PAGES} pages for "
                            "one window")
        later = await self._ledger_page({"startTimestamp": iso_time(end), "pageSize": "10"})
        stamps = [c.at for c in map(charge_from, later.get("data") or ()) if c is not None]
        recorded = max(stamps) if stamps else max((c.at for c in charges), default=None)
        return Ledger(tuple(charges), recorded)

    async def _ledger_page(self, params: dict[str, str]) -> dict[str, Any]:
        answer = await self.request("GET", "/billing/usage-history", params=params,
                                    what="usage history")
        return answer.json_object("Venice usage history")
