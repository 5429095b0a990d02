"""The AceData Cloud Wan 2.6 API, simulated (mounted under /acedata).

Speaks api-notes.md section 3: `POST /wan/videos` and `POST /wan/tasks` (actions `retrieve`,
`retrieve_batch` and `delete`, which forgets the task record but not the video). Like the
real API, a submit without `"async": true` (or a `callback_url`) BLOCKS until the video is
done and answers the flat finished record; with it, the answer is `{"success": true,
"task_id"}` at once. Errors are `{"success": false, "error": {"code", "message"},
"trace_id"}` with the documented codes: bad_request (400), invalid_token (401),
forbidden (403), too_many_requests (429, with Retry-After), api_error (500), timeout (504).

Choices where AceData's docs are silent:
- a task record has no `response` for the first half of its run, then an empty one, then
  the final `{success, task_id, video_url, state: "succeeded", ...}`; failures read
  `{success: false, state: "failed", error: {code, message}}`;
- an unknown task id on `retrieve` answers 404 `not_found`; `retrieve_batch` just leaves it
  out of `items`;
- a short balance answers 402 `insufficient_balance`;
- the 503 fault reads as AceData's 504 `timeout` (503 is not among its documented codes);
- prompts above 1500 characters are refused (the adapter's assumed limit; undocumented);
  negative prompts above 500 are cut to 500, as documented, not refused;
- per-key limits: 60 submits and 120 task queries a minute (undocumented; assumed);
- a `callback_url` is accepted but never called.

Triggers: `[sim:policy]` fails with `forbidden` (content moderation), `[sim:fail]` with
`api_error`; `[sim:expire]` and the 404 fault succeed, but the video URL answers 404.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from tui.sim.http import BadJSON, Request, Response, json_response
from tui.sim.state import FAIL_POLICY, SimJob, SimState

PROVIDER = "acedata"
LIMITS_PER_MIN = {"queue": 60, "retrieve": 120}  # assumed, see the docstring
PROMPT_LIMIT = 1500
NEGATIVE_LIMIT = 500
USD_PER_S = {"480P": 0.04, "720P": 0.08, "1080P": 0.12}
DEFAULT_RESOLUTION = "1080P"
DIMENSIONS = {"480P": (854, 480), "720P": (1280, 720), "1080P": (1920, 1080)}
T2V_MODELS = ("wan2.6-t2v",)
I2V_MODELS = ("wan2.6-i2v", "wan2.6-i2v-flash", "wan2.6-r2v")
FIRST_FRAME_MODELS = ("wan2.6-i2v", "wan2.6-i2v-flash")
R2V = "wan2.6-r2v"
_SIZE = re.compile(r"^(\d+)\*(\d+)$")

STATUS_OF = {
    "bad_request": 400,
    "invalid_token": 401,
    "insufficient_balance": 402,
    "forbidden": 403,
    "not_found": 404,
    "too_many_requests": 429,
    "api_error": 500,
    "timeout": 504,
}
FAILURES = {
    FAIL_POLICY: ("forbidden", "content moderation: the request was refused"),
}
INFERENCE_FAILURE = ("api_error", "the video generation failed")


def error(code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"success": False, "error": {"code": code, "message": message},
            "trace_id": str(uuid.uuid4())}
    return json_response(STATUS_OF[code], body, headers)


class API:
    """AceData's Wan endpoints over one SimState (see the module docstring)."""

    def __init__(self, state: SimState, server_base: Callable[[], str]) -> None:
        self.state = state
        self.server_base = server_base

    @property
    def key(self) -> str:
        return self.state.config.api_keys.get(PROVIDER, "")

    async def handle(self, req: Request, subpath: str) -> Response:
        if subpath not in ("/wan/videos", "/wan/tasks"):
            return error("not_found", f"no such endpoint: {req.path}")
        submit = subpath == "/wan/videos"
        refused = self._gate(req, "queue" if submit else "retrieve")
        if refused is None and req.method != "POST":
            refused = error("bad_request", "only POST is supported")
        body: Any = None
        if refused is None:
            try:
                body = req.json()
            except BadJSON as err:
                refused = error("bad_request", f"invalid JSON: {err}")
        if refused is None and not isinstance(body, dict):
            refused = error("bad_request", "the body must be a JSON object")
        if refused is not None:
            if submit:
                self.state.record_queue_call(None, False, refused.status)
            return refused
        return await self._videos(body) if submit else self._tasks(body)

    def _gate(self, req: Request, cls: str) -> Response | None:
        """Auth, then the random 429 fault, then the per-key window."""
        token = req.bearer()
        if token != self.key:
            return error("invalid_token", "invalid or missing authorization token")
        retry = self.state.draw_429()
        if retry is None:
            gate = self.state.admit(PROVIDER, token, cls, LIMITS_PER_MIN[cls])
            retry = None if gate.allowed else gate.retry_after
        if retry is not None:
            return error("too_many_requests", "you have exceeded the rate limit",
                         {"retry-after": str(max(1, retry))})
        return None

    # ------------------------------------------------------------ /wan/videos

    async def _videos(self, body: dict[str, Any]) -> Response:
        problem = validate(body)
        if problem:
            return self._refused(error("bad_request", problem))
        if isinstance(body.get("negative_prompt"), str):
            body["negative_prompt"] = body["negative_prompt"][:NEGATIVE_LIMIT]  # documented cut
        price = _price(body)
        if not self.state.charge(price):
            return self._refused(error("insufficient_balance", "your balance is used up"))
        job = self.state.new_job(PROVIDER, body["model"], body["prompt"], body, price)
        self.state.render_when_ready(job)
        if self.state.draw(self.state.faults.queue_ambiguous):
            # Accepted and charged, but the answer says otherwise: the "maybe charged" case.
            self.state.record_queue_call(job.remote_id, True, 500)
            return error("api_error", "internal server error")
        self.state.record_queue_call(job.remote_id, True, 200)
        if body.get("async") is True or body.get("callback_url"):
            return json_response(200, {"success": True, "task_id": job.remote_id})
        await self._wait_until_done(job)  # the real API holds the connection for minutes
        return json_response(200, self._final(job))

    def _refused(self, resp: Response) -> Response:
        self.state.record_queue_call(None, False, resp.status)
        return resp

    async def _wait_until_done(self, job: SimJob) -> None:
        # Poll the state clock: tests may drive it by hand instead of real time.
        while not job.finished(self.state.clock()):
            left = job.ready_at - self.state.clock()
            await asyncio.sleep(min(0.25, max(0.01, left)))

    # ------------------------------------------------------------ /wan/tasks

    def _tasks(self, body: dict[str, Any]) -> Response:
        action = body.get("action")
        if action == "retrieve_batch":
            return self._retrieve_batch(body)
        if action not in ("retrieve", "delete"):
            return error("bad_request", "action must be retrieve, retrieve_batch or delete")
        task_id = body.get("id")
        if not isinstance(task_id, str) or not task_id:
            return error("bad_request", "id is required")
        job = self._known(task_id)
        if job is None:
            return error("not_found", f"task {task_id} not found")
        if action == "delete":
            job.extra["record_deleted"] = True  # the history record only; the video stays
            return json_response(200, {"success": True})
        fault = self._fault()
        return fault or json_response(200, self._record(job))

    def _retrieve_batch(self, body: dict[str, Any]) -> Response:
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return error("bad_request", "ids must be a non-empty list of task ids")
        fault = self._fault()
        if fault is not None:
            return fault
        items = [self._record(job) for job in map(self._known, ids) if job is not None]
        return json_response(200, {"items": items, "count": len(items)})

    def _known(self, task_id: str) -> SimJob | None:
        job = self.state.job(task_id)
        if job is None or job.provider != PROVIDER or job.extra.get("record_deleted"):
            return None
        return job

    def _fault(self) -> Response | None:
        fault = self.state.draw_retrieve_error()
        if fault == 500:
            return error("api_error", "internal server error")
        if fault == 503:
            return error("timeout", "the upstream service timed out")
        return None

    # ------------------------------------------------------------ records

    def _record(self, job: SimJob) -> dict[str, Any]:
        now = self.state.clock()
        record: dict[str, Any] = {
            "id": job.remote_id,
            "type": "videos",
            "created_at": self._wall(job.created_at),
            "request": job.body,
        }
        if job.finished(now):
            record["finished_at"] = self._wall(job.ready_at)
            record["elapsed"] = round(job.run_s, 3)
            record["response"] = self._final(job)
        elif job.elapsed(now) >= job.run_s / 2:
            record["response"] = {}  # the "empty while running" variant
        return record

    def _final(self, job: SimJob) -> dict[str, Any]:
        """The finished answer: the blocking submit's body and a record's `response`."""
        out: dict[str, Any] = {"task_id": job.remote_id, "trace_id": str(uuid.uuid4())}
        if job.failed:
            self.state.refund(job)  # failed tasks are not billed
            code, message = FAILURES.get(job.failed, INFERENCE_FAILURE)
            out.update(success=False, state="failed", error={"code": code, "message": message})
            return out
        width, height = _dimensions(job.body)
        out.update(
            success=True,
            state="succeeded",
            video_id=job.token,
            video_url=self.state.file_url(self.server_base(), job),
            video_width=width,
            video_height=height,
        )
        return out

    def _wall(self, at: float) -> float:
        """A state-clock instant as Unix seconds (the state clock may be a fake)."""
        return round(time.time() - (self.state.clock() - at), 3)


# ---------------------------------------------------------------- validation


def validate(body: dict[str, Any]) -> str | None:
    """The first rule `body` breaks, as AceData's one-line message; None if valid."""
    for check in (_check_model, _check_prompt, _check_numbers, _check_flags, _check_media):
        problem = check(body)
        if problem:
            return problem
    return None


def _check_model(body: dict[str, Any]) -> str | None:
    action, model = body.get("action"), body.get("model")
    if action not in ("text2video", "image2video"):
        return "action must be text2video or image2video"
    allowed = T2V_MODELS if action == "text2video" else I2V_MODELS
    if model not in allowed:
        return f"model for {action} must be one of {', '.join(allowed)}"
    return None


def _check_prompt(body: dict[str, Any]) -> str | None:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required"
    if len(prompt) > PROMPT_LIMIT:
        return f"prompt must be at most {PROMPT_LIMIT} characters"
    if "negative_prompt" in body and not isinstance(body["negative_prompt"], str):
        return "negative_prompt must be a string"
    return None


def _check_numbers(body: dict[str, Any]) -> str | None:
    duration = body.get("duration")
    if duration is not None and (isinstance(duration, bool) or duration not in (5, 10, 15)):
        return "duration must be 5, 10 or 15"
    if "resolution" in body and body["resolution"] not in DIMENSIONS:
        return "resolution must be 480P, 720P or 1080P"
    size = body.get("size")
    if size is not None and not (isinstance(size, str) and _SIZE.match(size)):
        return "size must be WIDTH*HEIGHT, e.g. 1280*720"
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        return "seed must be an integer"
    return None


def _check_flags(body: dict[str, Any]) -> str | None:
    for name in ("audio", "prompt_extend", "async"):
        if name in body and not isinstance(body[name], bool):
            return f"{name} must be a boolean"
    if "shot_type" in body and body["shot_type"] not in ("single", "multi"):
        return "shot_type must be single or multi"
    for name in ("audio_url", "callback_url"):
        if name in body and not _is_http(body[name]):
            return f"{name} must be an http(s) URL"
    return None


def _check_media(body: dict[str, Any]) -> str | None:
    model = body["model"]
    image = body.get("image_url")
    if model in FIRST_FRAME_MODELS and not _is_http(image):
        return f"image_url (an http(s) URL) is required for {model}"
    if model not in FIRST_FRAME_MODELS and image is not None:
        return f"image_url is not supported by {model}"
    refs = body.get("reference_video_urls")
    if model == R2V:
        if not isinstance(refs, list) or not refs or not all(_is_http(u) for u in refs):
            return f"reference_video_urls (http(s) URLs) are required for {R2V}"
    elif refs is not None:
        return f"reference_video_urls are only supported by {R2V}"
    return None


def _is_http(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _price(body: dict[str, Any]) -> float:
    seconds = body.get("duration") or 5
    return round(seconds * USD_PER_S[body.get("resolution") or DEFAULT_RESOLUTION], 4)


def _dimensions(body: dict[str, Any]) -> tuple[int, int]:
    match = _SIZE.match(str(body.get("size") or ""))
    if match:
        return int(match.group(1)), int(match.group(2))
    return DIMENSIONS[body.get("resolution") or DEFAULT_RESOLUTION]
