"""APIXO adapter for Wan 2.5 (https://api.apixo.ai/api/v1).

Quirks handled here so nothing above has to know them:
- every answer is an envelope `{"code", "message", "data"}` whose `code` may carry an error
  while the HTTP status is 200, so both are checked;
- the wire model (`wan-2-5`, `wan-2-5-video`) takes a `mode` inside `input`; we expose one
  model id per (wire model, mode) so that `jobs.validate_request` alone is exact about
  aspect ratios and images (image-to-video takes no aspect ratio, text-to-video no image);
- on success `resultJson` is a JSON *string* holding `resultUrls`;
- there is no quote, model list or delete endpoint: caps are static, quotes are estimates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from tui.jobs import Job, JobRequest, ModelCaps, ValidationError, validate_request
from tui.providers.base import (
    BadAnswer,
    Failed,
    Forbidden,
    Gone,
    NotFound,
    OptionSpec,
    Outcome,
    Processing,
    ProviderError,
    Quote,
    Ready,
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

NOT_CONFIGURED = "APIXO is not configured: set APIXO_API_KEY or [providers.apixo] api_key"
NO_DELETE = "APIXO has no delete endpoint: the video expires on their side after 15 days"

T2V = "text-to-video"
I2V = "image-to-video"

# USD per second of video, from APIXO's pricing page. 480p is not priced there: we assume
# the 720p rate. An unset resolution is priced at 1080p so a --max-cost cap never undershoots.
USD_PER_SECOND = {"480p": 0.08, "720p": 0.08, "1080p": 0.13}
UNSET_RESOLUTION_RATE = "1080p"

ROUTING = ("auto", "value", "official")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
OPTIONS = ("provider", "enable_prompt_expansion")

_STATUS_HINTS = {
    400: "the request was refused as invalid",
    401: "APIXO rejected the API key: check APIXO_API_KEY",
    402: "the APIXO balance is too low: top up, then re-queue",
    403: "APIXO refused access",
    404: "task not found",
    422: "refused by the content policy",
    429: "rate limited by APIXO",
}

# Fail codes after which a new (paid) attempt may well succeed; anything about the
# content or the inputs will fail again the same way.
_RETRYABLE_FAIL_WORDS = ("TIMEOUT", "INTERNAL", "SERVER", "BUSY", "CAPACITY", "UNAVAILABLE")


@dataclass(frozen=True)
class Variant:
    """One exposed model id: which wire model it calls, in which mode."""

    wire_model: str
    mode: str


VARIANTS: dict[str, Variant] = {
    "wan-2-5-t2v": Variant("wan-2-5", T2V),
    "wan-2-5-i2v": Variant("wan-2-5", I2V),
    "wan-2-5-video-t2v": Variant("wan-2-5-video", T2V),
    "wan-2-5-video-i2v": Variant("wan-2-5-video", I2V),
}


def _caps(model_id: str, *, wide: bool) -> ModelCaps:
    """`wide`: the `wan-2-5-video` wire model (480p, 1500-char prompts, 4:3 and 3:4)."""
    mode = VARIANTS[model_id].mode
    aspects = ("16:9", "9:16", "1:1") + (("4:3", "3:4") if wide else ())
    return ModelCaps(
        provider="apixo",
        id=model_id,
        name=f"Wan 2.5{' video' if wide else ''} {mode}",
        model_type=mode,
        durations=("5s", "10s"),
        resolutions=(("480p",) if wide else ()) + ("720p", "1080p"),
        aspect_ratios=aspects if mode == T2V else (),
        prompt_limit=1500 if wide else 800,
        negative_prompt_limit=500,
        requires_image=mode == I2V,
        accepts_image=mode == I2V,
        options=OPTIONS,
    )


MODELS: tuple[ModelCaps, ...] = tuple(
    _caps(model_id, wide=variant.wire_model == "wan-2-5-video")
    for model_id, variant in VARIANTS.items()
)
CAPS: dict[str, ModelCaps] = {caps.id: caps for caps in MODELS}


# ---------------------------------------------------------------- validation and mapping


# APIXO's own model ids name the wire model only; the mode follows from the image.
ALIASES = {"wan-2-5": "wan-2-5", "wan-2-5-video": "wan-2-5-video"}


def normalized(req: JobRequest) -> JobRequest:
    """Accept APIXO's documented ids (`wan-2-5`, `wan-2-5-video`: mode from whether an image
    is given) and "720P" for "720p" (batch files written for AceData use upper case)."""
    if req.model in ALIASES:
        req = replace(req, model=f"{ALIASES[req.model]}-{'i2v' if req.image_url else 't2v'}")
    if req.resolution and req.resolution.lower() != req.resolution:
        req = replace(req, resolution=req.resolution.lower())
    return req


def validate(req: JobRequest) -> None:
    """Everything APIXO would refuse, checked before any paid call. Raises ValidationError."""
    caps = CAPS.get(req.model)
    if caps is None:
        raise ValidationError(
            f"APIXO has no model {req.model!r}; choose one of {', '.join(CAPS)}"
        )
    req = normalized(req)
    validate_request(req, caps)
    if req.image_url:
        _validate_image_url(req.image_url)
    _validate_options(req.options)


def _validate_image_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ValidationError(
            "APIXO fetches the image itself: give an http(s) URL, not a local file or data: URL"
        )
    path = urlsplit(url).path.lower()
    last = path.rsplit("/", 1)[-1]
    if "." in last and not last.endswith(IMAGE_EXTENSIONS):
        raise ValidationError(
            f"APIXO takes JPG, PNG or WebP images; {last!r} is not one (max 10 MB)"
        )




def _validate_options(options: dict[str, Any]) -> None:
    routing = options.get("provider")
    if routing is not None and routing not in ROUTING:
        raise ValidationError(
            f"APIXO option provider={routing!r} is unknown; choose one of {', '.join(ROUTING)}"
        )
    expand = options.get("enable_prompt_expansion")
    if expand is not None and not isinstance(expand, bool):
        raise ValidationError("APIXO option enable_prompt_expansion must be true or false")


def submit_body(req: JobRequest) -> dict[str, Any]:
    """The generateTask body: only fields the user set, duration as a number."""
    req = normalized(req)
    variant = VARIANTS[req.model]
    inp: dict[str, Any] = {
        "mode": variant.mode,
        "prompt": req.prompt,
        "duration": req.duration_seconds,
    }
    for key in ("negative_prompt", "resolution", "aspect_ratio", "seed"):
        value = getattr(req, key)
        if value is not None:
            inp[key] = value
    if req.image_url:
        inp["image_urls"] = [req.image_url]
    if req.options.get("enable_prompt_expansion") is not None:
        inp["enable_prompt_expansion"] = req.options["enable_prompt_expansion"]
    body: dict[str, Any] = {"request_type": "async", "input": inp}
    if req.options.get("provider") is not None:
        body["provider"] = req.options["provider"]
    return body


def estimate(req: JobRequest) -> Quote:
    req = normalized(req)
    rate = USD_PER_SECOND[req.resolution or UNSET_RESOLUTION_RATE]
    return Quote(usd=round(req.duration_seconds * rate, 4), estimate=True)


# ---------------------------------------------------------------- answer parsing


def _error_code(status: int, payload: Any) -> int | None:
    """The error status of an answer: the HTTP one, else the envelope's `code`."""
    if status >= 400:
        return status
    if isinstance(payload, dict):
        code = payload.get("code")
        if isinstance(code, str) and code.isdigit():
            code = int(code)
        if isinstance(code, int) and not isinstance(code, bool) and code >= 400:
            return code
    return None


def _error_text(payload: Any) -> str:
    if not isinstance(payload, dict):
        return ""
    data = payload.get("data")
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    # The notes say the key is `message`; sibling APIs of this shape use `msg`.
    return str(payload.get("message") or payload.get("msg") or "")


def check_envelope(status: int, payload: Any, headers: Any, what: str) -> dict[str, Any]:
    """Raise the taxonomy error an answer carries, else return its `data` object.

    `what` opens every message ("APIXO submit")."""
    code = _error_code(status, payload)
    if code is not None:
        hint = _STATUS_HINTS.get(code, f"APIXO answered code {code}")
        text = _error_text(payload)
        message = f"{hint}: {text}" if text and text.lower() not in hint.lower() else hint
        raise error_for_status(
            code,
            f"{what}: {message} (code {code})".replace("\n", " "),
            retry_after=rate_info_from_headers(headers).retry_after,
            detail={"http_status": status},
        )
    if not isinstance(payload, dict):
        raise BadAnswer(f"{what}: the answer is not a JSON envelope")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise BadAnswer(f"{what}: the answer envelope has no data object")
    return data


def task_id_from(data: dict[str, Any]) -> str:
    task_id = data.get("taskId")
    if not isinstance(task_id, str) or not task_id:
        raise BadAnswer("APIXO submit: the job was accepted but the answer has no taskId")
    return task_id


def outcome_from_status(data: dict[str, Any]) -> Outcome:
    """A statusTask `data` object → an outcome. Raises BadAnswer when it makes no sense."""
    state = str(data.get("state") or "").lower()
    if state == "pending":
        return Processing(queued=True)
    if state == "processing":
        return Processing()
    if state == "success":
        return Ready(url=result_url_from(data.get("resultJson")))
    if state == "failed":
        return failed_from(data)
    raise BadAnswer(f"APIXO status: unknown task state {state or '(none)'!r}")


def result_url_from(result_json: Any) -> str:
    """`resultJson` is a JSON string `{"resultUrls": [...]}`; tolerate an object too."""
    if isinstance(result_json, str):
        try:
            result_json = json.loads(result_json)
        except ValueError:
            raise BadAnswer("APIXO status: success, but resultJson is not valid JSON") from None
    urls = result_json.get("resultUrls") if isinstance(result_json, dict) else None
    if not isinstance(urls, list) or not urls:
        raise BadAnswer("APIXO status: success, but resultJson lists no resultUrls")
    url = urls[0]
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise BadAnswer("APIXO status: success, but the first result URL is not an http(s) URL")
    return url


def failed_from(data: dict[str, Any]) -> Failed:
    code = str(data.get("failCode") or "failed")
    message = str(data.get("failMsg") or "APIXO reported the task failed without a reason")
    squashed = re.sub(r"[^A-Z]", "", code.upper())
    retryable = any(word in squashed for word in _RETRYABLE_FAIL_WORDS)
    return Failed(code=code, message=message.replace("\n", " "), retryable=retryable)


# ---------------------------------------------------------------- the adapter


class ApixoProvider(HttpProvider):
    not_configured = NOT_CONFIGURED
    name = "apixo"
    label = "APIXO"
    can_delete = False
    can_quote = False  # no quote endpoint: prices come from the table above
    takes_seed = True  # input.seed / seed: an int
    reports_estimate = False
    option_specs = (
        OptionSpec("provider", "choice", ROUTING),
        OptionSpec("enable_prompt_expansion", "bool"),
    )
    default_limits_per_minute = {"queue": 10000, "retrieve": 10000}

    def normalize(self, req: JobRequest) -> JobRequest:
        return normalized(req)

    def validate(self, req: JobRequest, caps: ModelCaps | None = None) -> None:
        """Our caps are static and authoritative, so `caps` is not needed (kept for the base)."""
        validate(req)

    def answer_error(self, answer: Answer, what: str) -> ProviderError | None:
        """HTTP status first, then the envelope's `code` (an error may come with HTTP 200)."""
        try:
            check_envelope(answer.status, answer.payload(), answer.headers, what)
        except ProviderError as err:
            return err
        return None

    async def _data(self, method: str, path: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
        """One API request → the envelope's `data` (answer_error already checked it)."""
        answer = await self.request(method, path, what=what, **kwargs)
        return answer.payload()["data"]

    # ------------------------------------------------------------ the interface

    async def list_models(self) -> list[ModelCaps]:
        return list(MODELS)  # APIXO has no model endpoint

    async def quote(self, req: JobRequest) -> Quote:
        self.require_key()
        check_locally(validate, req)
        return estimate(req)

    async def submit(self, req: JobRequest) -> Submitted:
        self.require_key()
        # Nothing invalid ever goes on the wire: a refusal would be a wasted round trip.
        check_locally(validate, req)
        wire_model = VARIANTS[req.model].wire_model
        data = await self._data(
            "POST", f"/generateTask/{wire_model}", body=submit_body(req),
            what="submit", rate_class="queue",
        )
        return Submitted(remote_id=task_id_from(data))

    async def poll(self, job: Job) -> Outcome:
        variant = VARIANTS.get(job.model)
        if variant is None or not job.remote_id:
            raise BadAnswer(f"APIXO status: job {job.id} has no APIXO task to ask about")
        try:
            data = await self._data(
                "GET", f"/statusTask/{variant.wire_model}", params={"taskId": job.remote_id},
                what="status", rate_class="retrieve",
            )
        except NotFound:
            return Gone()
        return outcome_from_status(data)

    async def open_download(self, job: Job) -> VideoStream:
        url = job.result_url
        if not url:  # the URL was never stored (crash between poll and save): ask again
            outcome = await self.poll(job)
            if isinstance(outcome, Gone):
                raise NotFound(f"APIXO download: {outcome.message}")
            if not isinstance(outcome, Ready) or not outcome.url:
                raise BadAnswer("APIXO download: the task has no finished video yet")
            url = outcome.url
        self.require_key()
        try:
            # No auth header: result URLs live on a third-party CDN.
            return await self.open_url(url, "download")
        except Forbidden as err:  # signed CDN URLs answer 403 once they expire
            raise NotFound(err.message, status=err.status) from None

    async def delete(self, job: Job) -> None:
        raise Unsupported(NO_DELETE)
