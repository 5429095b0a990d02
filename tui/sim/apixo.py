"""The APIXO Wan 2.5 API, simulated (mounted under /apixo/api/v1).

Speaks api-notes.md section 2: `POST /generateTask/{wan-2-5|wan-2-5-video}` and
`GET /statusTask/{model}?taskId=...`, every answer in the `{"code", "message", "data"}`
envelope, errors as `data.error`. States run pending -> processing -> success | failed;
on success `resultJson` is a JSON *string* holding `resultUrls` (this server's
/files/<token>.mp4, no auth); on failure `failCode`/`failMsg`. Times are Unix milliseconds.

Choices where APIXO's docs are silent (kept deliberately awkward for clients):
- refusals of the request itself (400 invalid, 402 balance) come as HTTP 200 with the error
  code only in the envelope, as APIs of this family do; auth (401), unknown task or model
  (404), rate limits (429, with Retry-After) and server faults (500/503) use the HTTP status;
- 480p costs $0.06/s here (the docs price only 720p and 1080p); an unset resolution is 720p;
- the first 15 % of a job's run time reports `pending`;
- an image URL on a host ending in `.invalid` fails the task with INVALID_IMAGE_URL.

Triggers: `[sim:policy]` fails with CONTENT_VIOLATION, `[sim:fail]` with PROCESSING_TIMEOUT
(both refunded); `[sim:expire]` and the 404 fault succeed, but the result URL answers 404.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tui.sim.http import BadJSON, Request, Response, json_response
from tui.sim.state import FAIL_INFERENCE, FAIL_POLICY, SimJob, SimState

PROVIDER = "apixo"
PREFIX = "/api/v1"
LIMIT_PER_MIN = 10_000  # documented: 10 000 requests per minute
USD_PER_S = {"480p": 0.06, "720p": 0.08, "1080p": 0.13}
DEFAULT_RESOLUTION = "720p"
PENDING_FRACTION = 0.15
ROUTING = ("auto", "value", "official")
MODES = ("text-to-video", "image-to-video")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
FAIL_IMAGE = "invalid_image"

# How each failure kind reads on the wire: (failCode, failMsg).
FAIL_CODES = {
    FAIL_POLICY: ("CONTENT_VIOLATION", "Content violates safety guidelines"),
    FAIL_INFERENCE: ("PROCESSING_TIMEOUT", "Task processing timed out"),
    FAIL_IMAGE: ("INVALID_IMAGE_URL", "Cannot access provided image URL"),
}
# Refusals answered with HTTP 200 and the code only in the envelope (see the docstring).
ENVELOPE_ONLY = frozenset({400, 402})
MESSAGES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Insufficient Balance",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class SimModel:
    id: str
    prompt_limit: int
    resolutions: tuple[str, ...]
    aspect_ratios: tuple[str, ...]


MODELS = {
    "wan-2-5": SimModel("wan-2-5", 800, ("720p", "1080p"), ("16:9", "9:16", "1:1")),
    "wan-2-5-video": SimModel(
        "wan-2-5-video", 1500, ("480p", "720p", "1080p"), ("16:9", "9:16", "1:1", "4:3", "3:4")
    ),
}


def envelope(code: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    message = "success" if code == 200 else MESSAGES.get(code, "Error")
    status = 200 if code in ENVELOPE_ONLY else code
    return json_response(status, {"code": code, "message": message, "data": data}, headers)


def refuse(code: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return envelope(code, {"error": text}, headers)


class API:
    """APIXO's two endpoints over one SimState (see the module docstring)."""

    def __init__(self, state: SimState, server_base: Callable[[], str]) -> None:
        self.state = state
        self.server_base = server_base

    @property
    def key(self) -> str:
        return self.state.config.api_keys.get(PROVIDER, "")

    async def handle(self, req: Request, subpath: str) -> Response:
        route = subpath.removeprefix(PREFIX)
        kind, _, model_id = route.strip("/").partition("/")
        if kind not in ("generateTask", "statusTask"):
            return refuse(404, f"no such endpoint: {req.path}")
        submit = kind == "generateTask"
        if req.method != ("POST" if submit else "GET"):
            return refuse(405, "method not allowed")
        refused = self._gate(req, "queue" if submit else "retrieve")
        if refused is None and model_id not in MODELS:
            refused = refuse(404, f"model {model_id!r} not found")
        if refused is not None:
            if submit:
                self.state.record_queue_call(None, False, _code_of(refused))
            return refused
        model = MODELS[model_id]
        return await self._generate(req, model) if submit else self._status(req, model)

    def _gate(self, req: Request, cls: str) -> Response | None:
        """Auth, then the random 429 fault, then the per-key window."""
        token = req.bearer()
        if token != self.key:
            return refuse(401, "Invalid or missing API Key")
        retry = self.state.draw_429()
        if retry is None:
            gate = self.state.admit(PROVIDER, token, cls, LIMIT_PER_MIN)
            retry = None if gate.allowed else gate.retry_after
        if retry is not None:
            return refuse(429, "Rate limit exceeded", {"retry-after": str(max(1, retry))})
        return None

    # ------------------------------------------------------------ generateTask

    async def _generate(self, req: Request, model: SimModel) -> Response:
        try:
            body = req.json()
        except BadJSON as err:
            return self._refused(400, f"invalid JSON: {err}")
        problem = validate(body, model)
        if problem:
            return self._refused(400, problem)
        inp = body["input"]
        price = _price(inp)
        if not self.state.charge(price):
            return self._refused(402, "Insufficient balance")
        job = self.state.new_job(PROVIDER, model.id, inp["prompt"], body, price)
        if not job.failed and _unreachable_image(inp):
            job.failed = FAIL_IMAGE
        self.state.render_when_ready(job)
        if self.state.draw(self.state.faults.queue_ambiguous):
            # Accepted and charged, but the answer says otherwise: the "maybe charged" case.
            self.state.record_queue_call(job.remote_id, True, 500)
            return refuse(500, "internal error")
        self.state.record_queue_call(job.remote_id, True, 200)
        return envelope(200, {"taskId": job.remote_id})

    def _refused(self, code: int, text: str) -> Response:
        self.state.record_queue_call(None, False, code)
        return refuse(code, text)

    # ------------------------------------------------------------ statusTask

    def _status(self, req: Request, model: SimModel) -> Response:
        task_id = req.query.get("taskId")
        if not task_id:
            return refuse(400, "taskId is required")
        job = self.state.job(task_id)
        if job is None or job.provider != PROVIDER or job.model != model.id:
            return refuse(404, f"task {task_id} not found")
        fault = self.state.draw_retrieve_error()
        if fault is not None:
            return refuse(fault, "internal error" if fault == 500 else "service busy, retry")
        return envelope(200, self._task_data(job))

    def _task_data(self, job: SimJob) -> dict[str, Any]:
        now = self.state.clock()
        data: dict[str, Any] = {
            "taskId": job.remote_id,
            "createTime": self._wall_ms(job.created_at),
        }
        if not job.finished(now):
            pending = job.elapsed(now) < job.run_s * PENDING_FRACTION
            data["state"] = "pending" if pending else "processing"
            return data
        data["completeTime"] = self._wall_ms(job.ready_at)
        data["costTime"] = int(job.run_s * 1000)
        if job.failed:
            self.state.refund(job)  # failed tasks are not billed
            data["state"] = "failed"
            data["failCode"], data["failMsg"] = FAIL_CODES[job.failed]
            return data
        data["state"] = "success"
        url = self.state.file_url(self.server_base(), job)
        data["resultJson"] = json.dumps({"resultUrls": [url]})  # a string, as on the wire
        return data

    def _wall_ms(self, at: float) -> int:
        """A state-clock instant as Unix milliseconds (the state clock may be a fake)."""
        return int((time.time() - (self.state.clock() - at)) * 1000)


# ---------------------------------------------------------------- validation


def validate(body: Any, model: SimModel) -> str | None:
    """The first documented rule `body` breaks, as APIXO's one-line error; None if valid."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    request_type = body.get("request_type", "async")
    if request_type not in ("async", "callback"):
        return "request_type must be async or callback"
    if request_type == "callback" and not _is_http(body.get("callback_url")):
        return "callback_url is required when request_type=callback"
    if "provider" in body and body["provider"] not in ROUTING:
        return "provider must be one of auto, value, official"
    inp = body.get("input")
    if not isinstance(inp, dict):
        return "input is required"
    for check in (_check_mode, _check_prompt, _check_options, _check_media):
        problem = check(inp, model)
        if problem:
            return problem
    return None


def _check_mode(inp: dict[str, Any], model: SimModel) -> str | None:
    if inp.get("mode") not in MODES:
        return "input.mode must be text-to-video or image-to-video"
    return None


def _check_prompt(inp: dict[str, Any], model: SimModel) -> str | None:
    prompt = inp.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "input.prompt is required"
    if len(prompt) > model.prompt_limit:
        return f"input.prompt must be at most {model.prompt_limit} characters"
    negative = inp.get("negative_prompt")
    if negative is not None and (not isinstance(negative, str) or len(negative) > 500):
        return "input.negative_prompt must be a string of at most 500 characters"
    return None


def _check_options(inp: dict[str, Any], model: SimModel) -> str | None:
    duration = inp.get("duration")
    if duration is not None and (isinstance(duration, bool) or duration not in (5, 10)):
        return "input.duration must be the number 5 or 10"
    if "resolution" in inp and inp["resolution"] not in model.resolutions:
        return f"input.resolution must be one of {', '.join(model.resolutions)}"
    seed = inp.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        return "input.seed must be an integer"
    expand = inp.get("enable_prompt_expansion")
    if expand is not None and not isinstance(expand, bool):
        return "input.enable_prompt_expansion must be a boolean"
    return None


def _check_media(inp: dict[str, Any], model: SimModel) -> str | None:
    images = inp.get("image_urls")
    if inp["mode"] == "text-to-video":
        if images is not None:
            return "input.image_urls is only for image-to-video"
        aspect = inp.get("aspect_ratio")
        if aspect is not None and aspect not in model.aspect_ratios:
            return f"input.aspect_ratio must be one of {', '.join(model.aspect_ratios)}"
        return None
    if "aspect_ratio" in inp:
        return "input.aspect_ratio is only for text-to-video"
    if not isinstance(images, list) or len(images) != 1:
        return "image-to-video needs exactly one URL in input.image_urls"
    url = images[0]
    if not _is_http(url):
        return "input.image_urls must hold an http(s) URL"
    name = urlsplit(url).path.rsplit("/", 1)[-1].lower()
    if "." in name and not name.endswith(IMAGE_EXTENSIONS):
        return "input.image_urls supports JPG, PNG and WebP images"
    return None


def _is_http(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _unreachable_image(inp: dict[str, Any]) -> bool:
    images = inp.get("image_urls") or []
    if not images:
        return False
    return (urlsplit(images[0]).hostname or "").endswith(".invalid")


def _price(inp: dict[str, Any]) -> float:
    seconds = inp.get("duration") or 5
    return round(seconds * USD_PER_S[inp.get("resolution") or DEFAULT_RESOLUTION], 4)


def _code_of(resp: Response) -> int:
    """The envelope's code (the HTTP status may be 200 for refusals)."""
    try:
        return int(json.loads(resp.body)["code"])
    except (ValueError, KeyError, TypeError):
        return resp.status
