"""The Venice video API, simulated (mounted under /venice/api/v1).

Speaks api-notes.md section 1: `GET /models?type=video` (no key needed; without `type` it
lists text models, i.e. no video ones, as the real API does), `POST /video/quote`,
`/video/queue`, `/video/retrieve`, `/video/complete`, with Venice's validation errors,
402 on a short balance, 413 over 35 MB, per-key rate windows (queue class: queue + quote;
retrieve class: retrieve + complete), the failed-requests block and the rate headers on
every answer.

Prices are deterministic: the model's $/s x seconds x resolution multiplier (480p 0.6,
720p 1, 1080p 1.6) x 1.25 when audio is on. Resolution defaults to 720p (or the model's
first), audio to the model's `audio` flag.

`sora-2-text-to-video` behaves like Venice's download-URL models: its queue answer carries
a `download_url` (this server's /files/<token>.mp4, no auth) and, once finished, retrieve
answers JSON `{"status": "COMPLETED"}` without the video.

Billing, as the published document has it: `GET /billing/balance` (USD; `canConsume` is
false once the balance is spent, or as `SimState.can_consume` says) and `GET
/billing/usage-history` (the ledger: every queue charge with the queue id as its request id,
every refund, ascending, in cursor pages). `seedance-2-0-text-to-video` answers 409
needs_consent unless the body carries the three consents; `hunyuan-video` is listed offline.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tui.sim.http import BadJSON, Request, Response, json_response
from tui.sim.state import (
    FAIL_INFERENCE,
    FAIL_POLICY,
    Admission,
    LedgerEntry,
    SimJob,
    SimState,
    parse_triggers,
)

PROVIDER = "venice"
PREFIX = "/api/v1"
MAX_BODY = 35 * 1024 * 1024
RESOLUTION_MULTIPLIER = {"480p": 0.6, "720p": 1.0, "1080p": 1.6}
AUDIO_MULTIPLIER = 1.25
CREATED = 1_743_465_600  # a fixed "created" stamp keeps the catalogue byte-stable


@dataclass(frozen=True)
class SimModel:
    id: str
    name: str
    model_type: str  # text-to-video | image-to-video | video
    durations: tuple[str, ...]
    resolutions: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    audio: bool
    audio_configurable: bool
    usd_per_s: float
    prompt_limit: int = 2500
    deprecation: tuple[str, str] | None = None  # (date, replacement model id)
    auto_remap: bool = False  # with a deprecation: Venice may run the replacement instead
    download_url: bool = False  # retrieve never returns bytes; queue gives a URL instead
    offline: bool = False
    consent: bool = False  # queue answers 409 needs_consent without the body's consents

    @property
    def default_resolution(self) -> str | None:
        if "720p" in self.resolutions:
            return "720p"
        return self.resolutions[0] if self.resolutions else None

    def price(self, duration: str, resolution: str | None, audio: bool | None) -> float:
        seconds = int(duration.rstrip("s"))
        res = resolution or self.default_resolution
        with_audio = self.audio and (audio if audio is not None else True)
        usd = self.usd_per_s * seconds * RESOLUTION_MULTIPLIER.get(res or "", 1.0)
        return round(usd * (AUDIO_MULTIPLIER if with_audio else 1.0), 4)

    def entry(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": self.name,
            "constraints": {
                "model_type": self.model_type,
                "durations": list(self.durations),
                "resolutions": list(self.resolutions),
                "aspect_ratios": list(self.aspect_ratios),
                "audio": self.audio,
                "audio_configurable": self.audio_configurable,
                "prompt_character_limit": self.prompt_limit,
            },
            "offline": self.offline,
            "privacy": "anonymized",
            "traits": [],
        }
        if self.deprecation:
            date, replacement = self.deprecation
            spec["deprecation"] = {"date": date, "removesAt": date, "startsAt": date,
                                   "replacementModelId": replacement,
                                   "autoRemap": self.auto_remap}
        return {
            "id": self.id,
            "type": "video",
            "object": "model",
            "created": CREATED,
            "owned_by": "venice.ai",
            "model_spec": spec,
        }


_WIDE = ("16:9", "9:16", "1:1")
_RES3 = ("480p", "720p", "1080p")
CATALOGUE: tuple[SimModel, ...] = (
    SimModel(
        "wan-2.5-preview-text-to-video", "Wan 2.5 Preview Text to Video", "text-to-video",
        ("5s", "10s"), _RES3, _WIDE, True, True, 0.05,
    ),
    SimModel(
        "wan-2.5-preview-image-to-video", "Wan 2.5 Preview Image to Video", "image-to-video",
        ("5s", "10s"), _RES3, (), True, True, 0.05,
    ),
    SimModel(
        "wan-2-7-text-to-video", "Wan 2.7 Text to Video", "text-to-video",
        ("5s", "10s", "15s"), ("720p", "1080p"), (*_WIDE, "4:3", "3:4"), True, True, 0.08,
    ),
    SimModel(
        "wan-2-7-image-to-video", "Wan 2.7 Image to Video", "image-to-video",
        ("5s", "10s", "15s"), ("720p", "1080p"), (), True, True, 0.08,
    ),
    SimModel(
        "kling-2.6-pro-text-to-video", "Kling 2.6 Pro Text to Video", "text-to-video",
        ("5s", "10s"), ("1080p",), _WIDE, False, False, 0.07,
    ),
    SimModel(
        "veo3.1-fast-text-to-video", "Veo 3.1 Fast Text to Video", "text-to-video",
        ("4s", "6s", "8s"), ("720p", "1080p"), ("16:9", "9:16"), True, False, 0.15,
    ),
    SimModel(
        "ltx-2-fast-text-to-video", "LTX-2 Fast Text to Video", "text-to-video",
        ("6s", "8s", "10s"), ("720p", "1080p"), ("16:9",), True, True, 0.04, prompt_limit=1000,
    ),
    SimModel(
        "seedance-1-5-pro-video", "Seedance 1.5 Pro", "video",
        ("5s", "10s"), _RES3, (*_WIDE, "4:3", "3:4", "21:9"), False, False, 0.06,
        prompt_limit=2000,
    ),
    SimModel(
        "wan-2.1-pro-text-to-video", "Wan 2.1 Pro Text to Video", "text-to-video",
        ("5s",), ("720p",), ("16:9", "9:16"), False, False, 0.04, prompt_limit=1500,
        deprecation=("2026-01-15T00:00:00.000Z", "wan-2.5-preview-text-to-video"),
        auto_remap=True,
    ),
    SimModel(
        "sora-2-text-to-video", "Sora 2 Text to Video", "text-to-video",
        ("4s", "8s", "12s"), ("720p",), ("16:9", "9:16"), True, False, 0.10,
        download_url=True,
    ),
    SimModel(
        "seedance-2-0-text-to-video", "Seedance 2.0 Text to Video", "text-to-video",
        ("5s", "10s"), ("720p", "1080p"), _WIDE, True, False, 0.09, consent=True,
    ),
    SimModel(
        "hunyuan-video", "HunyuanVideo", "text-to-video",
        ("5s",), ("720p",), ("16:9",), False, False, 0.05, offline=True,
    ),
)  # fmt: skip
CONSENTS = ("confirmed_terms_and_privacy", "confirmed_legal_right",
            "confirmed_screening_acknowledged")
CONSENT_DOCS = "https://docs.venice.ai/overview/guides/consent"
LEDGER_PAGE_MAX = 1000
NEVER_S = 3600.0  # a withheld answer: the client gives up or dies first

# route -> (handler name, rate class)
_ENDPOINTS = {
    "/video/quote": ("_quote", "queue"),
    "/video/queue": ("_queue", "queue"),
    "/video/retrieve": ("_retrieve", "retrieve"),
    "/video/complete": ("_complete", "retrieve"),
}


class _Invalid:
    """Collects validation errors into Venice's 400 shape: details.<field>._errors[]."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def response(self) -> Response:
        details = {name: {"_errors": msgs} for name, msgs in self.fields.items()}
        return json_response(400, {"error": "Invalid request parameters", "details": details})


def _enum_error(allowed: tuple[str, ...], got: Any) -> str:
    options = " | ".join(f"'{a}'" for a in allowed)
    return f"Invalid enum value. Expected {options}, received '{got}'"


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}.get(
        type(value), "object" if isinstance(value, dict) else "null"
    )


def _image_url_ok(value: str) -> bool:
    return value.startswith(("http://", "https://")) or (
        value.startswith("data:image/") and ";base64," in value
    )


class API:
    """Venice's video endpoints over one SimState (see the module docstring)."""

    def __init__(self, state: SimState, server_base: Callable[[], str]) -> None:
        self.state = state
        self.server_base = server_base
        self.models = {m.id: m for m in CATALOGUE}

    def _limit(self, cls: str) -> int:
        f = self.state.faults
        return f.queue_limit_per_min if cls == "queue" else f.retrieve_limit_per_min

    async def handle(self, req: Request, subpath: str) -> Response:
        route = subpath.removeprefix(PREFIX)
        if route == "/models":
            return self._models(req)
        if route in ("/billing/balance", "/billing/usage-history"):
            return self._billing(req, route)
        endpoint = _ENDPOINTS.get(route)
        if endpoint is None:
            return json_response(404, {"error": f"Not found: {req.path}"})
        if req.method != "POST":
            return json_response(405, {"error": "Method not allowed"})
        name, cls = endpoint
        token = self.state.authorized(PROVIDER, req)
        balance = self.state.balance_usd
        if token is None:
            # Not a budget of any known key: headers describe an empty window, nothing spent.
            resp = json_response(401, {"error": "Authentication failed"})
            gate = self.state.peek(PROVIDER, "(none)", cls, self._limit(cls))
            return self._finish(resp, route, gate, None, reached=False)
        resp, gate, reached = await self._gated(req, token, name, cls)
        self.state.record_result(PROVIDER, token, resp.status)
        return self._finish(resp, route, gate, balance, reached=reached)

    async def _gated(
        self, req: Request, token: str, name: str, cls: str
    ) -> tuple[Response, Admission, bool]:
        """Rate gates first (random 429, block, window), then the endpoint itself.

        The flag says whether the endpoint handler ran (it then did its own recording).
        """
        limit = self._limit(cls)
        retry = self.state.draw_429()
        if retry is not None:
            gate = self.state.peek(PROVIDER, token, cls, limit)
            return _too_many(retry), gate, False
        gate = self.state.admit(PROVIDER, token, cls, limit)
        if not gate.allowed:
            return _too_many(gate.retry_after), gate, False
        if len(req.body) > MAX_BODY:
            too_big = {"error": "Request body too large", "code": "PAYLOAD_TOO_LARGE"}
            return json_response(413, too_big), gate, False
        try:
            body = req.json()
        except BadJSON as err:
            return json_response(400, {"error": f"Invalid JSON: {err}"}), gate, False
        if not isinstance(body, dict):
            bad = json_response(400, {"error": "Request body must be a JSON object"})
            return bad, gate, False
        handler: Callable[[dict[str, Any]], Awaitable[Response]] = getattr(self, name)
        return await handler(body), gate, True

    def _finish(
        self, resp: Response, route: str, gate: Admission, balance: float | None, *, reached: bool
    ) -> Response:
        if route == "/video/queue" and not reached:
            # Refused before the queue handler ran: recorded here, nothing charged.
            self.state.record_queue_call(None, False, resp.status)
        resp.headers.update(_rate_headers(gate, balance))
        return resp

    # ------------------------------------------------------------ endpoints

    def _models(self, req: Request) -> Response:
        kind = req.query.get("type", "text")
        data = [m.entry() for m in CATALOGUE] if kind in ("video", "all") else []
        token = self.state.authorized(PROVIDER, req)
        known = token is not None
        limit = self._limit("retrieve")
        gate = self.state.peek(PROVIDER, token or "(none)", "retrieve", limit)
        resp = json_response(200, {"object": "list", "type": kind, "data": data})
        resp.headers.update(_rate_headers(gate, self.state.balance_usd if known else None))
        return resp

    def _billing(self, req: Request, route: str) -> Response:
        if req.method != "GET":
            return json_response(405, {"error": "Method not allowed"})
        if self.state.authorized(PROVIDER, req) is None:
            return json_response(401, {"error": "Authentication failed"})
        if route == "/billing/balance":
            return json_response(200, {
                "canConsume": self.state.spendable(),
                "consumptionCurrency": "USD",
                "balances": {"diem": None, "usd": round(self.state.balance_usd, 6)},
                "diemEpochAllocation": 0,
            })
        return self._usage_history(req.query)

    def _usage_history(self, query: dict[str, str]) -> Response:
        """One page of the ledger. The cursor carries the walk's filters and position, so a
        continuation with filters beside it is refused, as the document says."""
        cursor = query.get("cursor")
        if cursor is not None:
            if set(query) != {"cursor"}:
                return json_response(400, {"error": "A cursor carries its filters: send it "
                                                    "alone"})
            try:
                walk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            except ValueError:
                walk = None
            if not isinstance(walk, dict):
                return json_response(400, {"error": "Invalid cursor: restart the walk"})
        else:
            walk = {"start": query.get("startTimestamp"), "end": query.get("endTimestamp"),
                    "size": query.get("pageSize", str(LEDGER_PAGE_MAX)), "at": 0}
        try:
            start = _instant(walk["start"]) if walk["start"] else float("-inf")
            end = _instant(walk["end"]) if walk["end"] else float("inf")
            size = int(walk["size"])
        except (KeyError, TypeError, ValueError):
            return json_response(400, {"error": "Invalid request parameters", "details": {
                "startTimestamp": {"_errors": ["Expected ISO 8601 UTC with a Z suffix"]}}})
        if not 10 <= size <= LEDGER_PAGE_MAX:
            return json_response(400, {"error": "Invalid request parameters", "details": {
                "pageSize": {"_errors": [f"Number must be between 10 and {LEDGER_PAGE_MAX}"]}}})
        entries = [e for e in self.state.ledger() if start <= e.at < end]
        at = int(walk.get("at", 0))
        page = entries[at:at + size]
        following = None
        if at + size < len(entries):
            walk = {**walk, "at": at + size}
            following = base64.urlsafe_b64encode(json.dumps(walk).encode()).decode().rstrip("=")
        return json_response(200, {"data": [_ledger_row(e) for e in page],
                                   "nextCursor": following})

    async def _quote(self, body: dict[str, Any]) -> Response:
        errors = _Invalid()
        model = self._check_model(body, errors)
        if model is not None:
            self._check_duration(model, body, errors)
            self._check_resolution(model, body, errors)
        if errors or model is None:
            return errors.response()
        audio = body.get("audio") if isinstance(body.get("audio"), bool) else None
        quote = model.price(body["duration"], body.get("resolution"), audio)
        return json_response(200, {"quote": quote})

    async def _queue(self, body: dict[str, Any]) -> Response:
        model, errors = self._validate_queue(body)
        if errors or model is None:
            self.state.record_queue_call(None, False, 400)
            return errors.response()
        lost = parse_triggers(body["prompt"])
        if "unheard" in lost:
            self.state.record_queue_call(None, False, 0)
            await asyncio.sleep(NEVER_S)  # read, never acted on, never answered
        if model.consent and not _consented(body):
            self.state.record_queue_call(None, False, 409)
            return json_response(409, _needs_consent())
        price = model.price(body["duration"], body.get("resolution"), body.get("audio"))
        if not self.state.charge(price):
            self.state.record_queue_call(None, False, 402)
            return json_response(402, {"error": "Insufficient USD or VCU balance"})
        job = self.state.new_job(PROVIDER, model.id, body["prompt"], body, price)
        self.state.write_ledger(_sku(model.id), -price, job.remote_id)
        self.state.render_when_ready(job)
        if "noanswer" in lost:
            self.state.record_queue_call(job.remote_id, True, 0)
            await asyncio.sleep(NEVER_S)
        if "ambiguous" in lost or self.state.draw(self.state.faults.queue_ambiguous):
            # Accepted and charged, but the answer says otherwise: the "maybe charged" case.
            self.state.record_queue_call(job.remote_id, True, 500)
            return json_response(500, {"error": "Internal server error"})
        self.state.record_queue_call(job.remote_id, True, 200)
        answer = {"model": model.id, "queue_id": job.remote_id}
        if model.download_url:
            answer["download_url"] = self.state.file_url(self.server_base(), job)
        return json_response(200, answer)

    async def _retrieve(self, body: dict[str, Any]) -> Response:
        job, refused = self._find_job(body)
        if refused is not None:
            return refused
        assert job is not None
        fault = self.state.draw_retrieve_error()
        if fault == 500:
            return json_response(500, {"error": "Internal server error"})
        if fault == 503:
            return json_response(503, {"error": "The model is at capacity, try again later"})
        now = self.state.clock()
        if not job.finished(now):
            return json_response(200, self._processing(job, now))
        return await self._finished(job, body.get("delete_media_on_completion") is True)

    async def _complete(self, body: dict[str, Any]) -> Response:
        job, refused = self._find_job(body)
        if refused is not None:
            return refused
        assert job is not None
        if job.expired and job.finished(self.state.clock()):
            return _not_found()
        self.state.delete_media(job)
        self.state.record_complete_call(job.remote_id)
        return json_response(200, {"success": True})

    # ------------------------------------------------------------ retrieve helpers

    def _processing(self, job: SimJob, now: float) -> dict[str, Any]:
        return {
            "status": "PROCESSING",
            "average_execution_time": int(self.state.p80_s(job.model) * 1000),
            "execution_duration": int(job.elapsed(now) * 1000),
        }

    async def _finished(self, job: SimJob, delete_after: bool) -> Response:
        if job.expired:
            return _not_found()
        if job.failed == FAIL_POLICY:
            if self.state.refund(job):
                self.state.write_ledger(_sku(job.model), job.price_usd, job.remote_id)
            return json_response(422, _policy_error(job.model))
        if job.failed == FAIL_INFERENCE:
            return json_response(500, {"error": "Inference failed"})
        if self.models[job.model].download_url:
            return json_response(200, {"status": "COMPLETED"})
        after = (lambda: self.state.delete_media(job)) if delete_after else None
        return await self.state.clip_response(job, after_send=after)

    def _find_job(self, body: dict[str, Any]) -> tuple[SimJob | None, Response | None]:
        errors = _Invalid()
        model = self._check_model(body, errors)
        queue_id = body.get("queue_id")
        if not isinstance(queue_id, str) or not queue_id:
            errors.add("queue_id", "Required" if queue_id is None else "Expected string")
        if errors or model is None or not isinstance(queue_id, str):
            return None, errors.response()
        job = self.state.job(queue_id)
        if job is None or job.provider != PROVIDER or job.deleted:
            return None, _not_found()
        if job.model != model.id:
            errors.add("model", f"queue_id {queue_id} was queued with model {job.model}")
            return None, errors.response()
        return job, None

    # ------------------------------------------------------------ validation

    def _validate_queue(self, body: dict[str, Any]) -> tuple[SimModel | None, _Invalid]:
        errors = _Invalid()
        model = self._check_model(body, errors)
        if model is None:
            return None, errors
        self._check_prompt(model, body, errors)
        self._check_duration(model, body, errors)
        self._check_resolution(model, body, errors)
        self._check_aspect(model, body, errors)
        self._check_audio(model, body, errors)
        self._check_image(model, body, errors)
        for name in ("negative_prompt", "audio_url"):
            if name in body and not isinstance(body[name], str):
                errors.add(name, f"Expected string, received {_type_name(body[name])}")
        return model, errors

    def _check_model(self, body: dict[str, Any], errors: _Invalid) -> SimModel | None:
        value = body.get("model")
        if value is None:
            errors.add("model", "Required")
            return None
        if not isinstance(value, str):
            errors.add("model", f"Expected string, received {_type_name(value)}")
            return None
        model = self.models.get(value)
        if model is None:
            errors.add("model", f"Model {value} is not a video model available on Venice")
        return model

    def _check_prompt(self, model: SimModel, body: dict[str, Any], errors: _Invalid) -> None:
        prompt = body.get("prompt")
        if prompt is None:
            errors.add("prompt", "Required")
        elif not isinstance(prompt, str):
            errors.add("prompt", f"Expected string, received {_type_name(prompt)}")
        elif not prompt.strip():
            errors.add("prompt", "String must contain at least 1 character(s)")
        elif len(prompt) > model.prompt_limit:
            errors.add("prompt", f"String must contain at most {model.prompt_limit} character(s)")

    def _check_duration(self, model: SimModel, body: dict[str, Any], errors: _Invalid) -> None:
        duration = body.get("duration")
        if duration is None:
            errors.add("duration", "Required")
        elif not isinstance(duration, str):
            errors.add("duration", f"Expected string, received {_type_name(duration)}")
        elif duration not in model.durations:
            errors.add("duration", _enum_error(model.durations, duration))

    def _check_resolution(self, model: SimModel, body: dict[str, Any], errors: _Invalid) -> None:
        value = body.get("resolution")
        if value is None:
            return
        if not isinstance(value, str):
            errors.add("resolution", f"Expected string, received {_type_name(value)}")
        elif value not in model.resolutions:
            errors.add("resolution", _enum_error(model.resolutions, value))

    def _check_aspect(self, model: SimModel, body: dict[str, Any], errors: _Invalid) -> None:
        value = body.get("aspect_ratio")
        if value is None:
            return
        if not model.aspect_ratios:
            errors.add("aspect_ratio", f"{model.id} does not support aspect_ratio")
        elif value not in model.aspect_ratios:
            errors.add("aspect_ratio", _enum_error(model.aspect_ratios, value))

    def _check_audio(self, model: SimModel, body: dict[str, Any], errors: _Invalid) -> None:
        value = body.get("audio")
        if value is None:
            return
        if not isinstance(value, bool):
            errors.add("audio", f"Expected boolean, received {_type_name(value)}")
        elif not model.audio_configurable:
            errors.add("audio", f"{model.id} does not support configuring audio")

    def _check_image(self, model: SimModel, body: dict[str, Any], errors: _Invalid) -> None:
        value = body.get("image_url")
        if value is None:
            if model.model_type == "image-to-video":
                errors.add("image_url", f"image_url is required for {model.id}")
            return
        if model.model_type == "text-to-video":
            errors.add("image_url", f"{model.id} is text-to-video and takes no image_url")
        elif not isinstance(value, str) or not _image_url_ok(value):
            errors.add("image_url", "Expected an http(s) URL or a data:image/...;base64, URL")


# ------------------------------------------------------------ answers


def _too_many(retry_after: int) -> Response:
    return json_response(
        429, {"error": "Rate limit exceeded"}, {"retry-after": str(max(1, retry_after))}
    )


def _not_found() -> Response:
    return json_response(404, {"error": "Media not found"})


def _policy_error(model: str) -> dict[str, Any]:
    other = "wan-2-7-text-to-video"
    if model == other:
        other = "kling-2.6-pro-text-to-video"
    return {
        "error": {
            "message": "The selected model provider rejected this request due to its content "
                       f"policies. Credits have been refunded. Try using {other} instead.",
            "type": "provider_content_policy",
            "recommended_model": other,
            "credits_refunded": True,
        }
    }


def _consented(body: dict[str, Any]) -> bool:
    consents = body.get("consents")
    given = consents.get("seedance") if isinstance(consents, dict) else None
    return isinstance(given, dict) and all(given.get(name) is True for name in CONSENTS)


def _needs_consent() -> dict[str, Any]:
    return {
        "error": {"code": "needs_consent",
                  "message": "This model needs your consent before it accepts requests"},
        "consent_flow": "seedance",
        "face_media_roles": ["image", "reference_image"],
        "consent": {"consent_version": "2026-07-01",
                    "policy_text": "Media you submit may be screened before processing."},
        "docs_url": CONSENT_DOCS,
    }


def _sku(model: str) -> str:
    """The ledger's product name for a video of `model`. Venice's document shows SKUs only
    for other products (`<model>-llm-output-mtoken`); the model id first is our guess."""
    return f"{model}-video"


def _instant(text: str) -> float:
    if not text.endswith("Z"):
        raise ValueError(text)
    return datetime.fromisoformat(text).timestamp()


def _ledger_row(entry: LedgerEntry) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(entry.at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    details = None
    if entry.request_id is not None:
        details = {"completionTokens": None, "inferenceExecutionTime": None,
                   "promptTokens": None, "requestId": entry.request_id}
    return {"amount": entry.amount, "currency": entry.currency, "inferenceDetails": details,
            "notes": "API Inference", "pricePerUnitUsd": abs(entry.amount), "sku": entry.sku,
            "timestamp": stamp, "units": 1}


def _rate_headers(gate: Admission, balance: float | None) -> dict[str, str]:
    headers = {
        "x-ratelimit-limit-requests": str(gate.limit),
        "x-ratelimit-remaining-requests": str(gate.remaining),
        "x-ratelimit-reset-requests": str(gate.reset_at),
    }
    if balance is not None:
        headers["x-venice-balance-usd"] = f"{balance:.4f}"
    return headers
