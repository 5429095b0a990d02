"""The domain: requests, jobs, their states and the rules between them.

Plain Python only -- no Textual, no httpx, no SQL -- so every layer can import it
and most behaviour can be tested without IO.
"""

from __future__ import annotations

import enum
import json
import re
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tui.errors import EXIT_USAGE, WanError


class JobState(enum.StrEnum):
    PENDING = "pending"  # recorded, not yet sent (no money spent)
    SUBMITTING = "submitting"  # the paid submit request is (maybe) on the wire
    QUEUED = "queued"  # remote id saved, provider has not started
    PROCESSING = "processing"
    DOWNLOADING = "downloading"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"  # remote media gone (404 / URL expired)
    CANCELLED = "cancelled"  # the user stopped tracking it
    UNKNOWN = "unknown"  # submit sent, answer never reached disk: maybe charged, id unknown

    @property
    def active(self) -> bool:
        return self in ACTIVE_STATES

    @property
    def final(self) -> bool:
        return self not in ACTIVE_STATES


ACTIVE_STATES = frozenset(
    {
        JobState.PENDING,
        JobState.SUBMITTING,
        JobState.QUEUED,
        JobState.PROCESSING,
        JobState.DOWNLOADING,
    }
)
FINAL_STATES = frozenset(JobState) - ACTIVE_STATES

# Which transitions are legal. Anything else is a bug in the engine, and refusing it
# keeps a stray event from, say, turning a finished, paid-for file back into "queued".
_ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.SUBMITTING, JobState.CANCELLED, JobState.FAILED}),
    JobState.SUBMITTING: frozenset(
        {
            JobState.QUEUED,
            JobState.PENDING,  # certainly not accepted (refused connection, 429): try later
            JobState.FAILED,  # certainly refused (400/401/402/...): nothing charged
            JobState.UNKNOWN,  # may have reached the server: never resubmitted blindly
        }
    ),
    JobState.QUEUED: frozenset(
        {
            JobState.PROCESSING,
            JobState.DOWNLOADING,
            JobState.FAILED,
            JobState.EXPIRED,
            JobState.CANCELLED,
        }
    ),
    JobState.PROCESSING: frozenset(
        {JobState.DOWNLOADING, JobState.FAILED, JobState.EXPIRED, JobState.CANCELLED}
    ),
    JobState.DOWNLOADING: frozenset(
        {JobState.DONE, JobState.FAILED, JobState.EXPIRED, JobState.CANCELLED, JobState.QUEUED}
    ),
    JobState.DONE: frozenset({JobState.EXPIRED}),  # remote copy deleted / expired later
    JobState.FAILED: frozenset(),
    JobState.EXPIRED: frozenset(),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),  # resume tracking a cancelled job
    JobState.UNKNOWN: frozenset({JobState.CANCELLED}),
}


class TransitionError(WanError, ValueError):
    """A state change the job's life does not allow (a bug, not the user's input)."""


def check_transition(old: JobState, new: JobState) -> None:
    if new == old:
        return
    if new not in _ALLOWED[old]:
        raise TransitionError(f"a job cannot go from {old} to {new}")


class ValidationError(WanError, ValueError):
    """A request the provider would refuse. The message is one line for a human."""

    exit_status = EXIT_USAGE


@dataclass(frozen=True)
class Deprecation:
    date: str | None = None
    replacement: str | None = None


@dataclass(frozen=True)
class ModelCaps:
    """What one provider model accepts. Built by each adapter from its provider's facts."""

    provider: str
    id: str
    name: str
    model_type: str  # text-to-video | image-to-video | video (anything-to-video)
    durations: tuple[str, ...]  # as the user writes them: "5s", "10s"
    resolutions: tuple[str, ...] = ()
    aspect_ratios: tuple[str, ...] = ()  # empty: the model takes no aspect ratio
    audio: bool = False
    audio_configurable: bool = False
    prompt_limit: int = 2500
    negative_prompt_limit: int | None = None
    requires_image: bool = False
    accepts_image: bool = False
    # provider-specific option names this model takes (validated by the adapter)
    options: tuple[str, ...] = ()
    deprecation: Deprecation | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCaps:
        data = dict(data)
        dep = data.pop("deprecation", None)
        for key in ("durations", "resolutions", "aspect_ratios", "options"):
            data[key] = tuple(data.get(key) or ())
        return cls(**data, deprecation=Deprecation(**dep) if dep else None)


@dataclass(frozen=True)
class JobRequest:
    """One video the user asked for, independent of any provider's wire format."""

    model: str
    prompt: str
    duration: str = "5s"
    provider: str = "venice"
    resolution: str | None = None
    aspect_ratio: str | None = None
    negative_prompt: str | None = None
    audio: bool | None = None
    image_url: str | None = None  # http(s) URL or data: URL (local files are converted first)
    seed: int | None = None
    # provider-specific extras (APIXO "provider" routing, AceData "size", ...)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> int:
        return parse_duration(self.duration)

    def to_dict(self) -> dict[str, Any]:
        """Only the fields the user set: never invent values a provider would bill on."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value is None or value == {}:
                continue
            out[key] = value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRequest:
        """Build from a batch line or stored JSON; unknown keys are an error, not ignored."""
        known = {f for f in cls.__dataclass_fields__}
        extra = set(data) - known
        # Batch files use the queue body's keys: negative_prompt etc. match already;
        # anything else provider-specific lands in options when the adapter knows it.
        opts = dict(data.get("options") or {})
        for key in sorted(extra):
            opts[key] = data[key]
        values = {k: v for k, v in data.items() if k in known and k != "options"}
        if "model" not in values or not isinstance(values["model"], str) or not values["model"]:
            raise ValidationError(
                "missing 'model' (a model id such as wan-2.5-preview-text-to-video)")
        if "prompt" not in values or not isinstance(values["prompt"], str):
            raise ValidationError("missing 'prompt' (the text that describes the video)")
        if "duration" in values:
            duration = values["duration"]
            if isinstance(duration, int | float) and not isinstance(duration, bool):
                values["duration"] = f"{int(duration)}s"
            elif not isinstance(duration, str):
                raise ValidationError("'duration' must be a string such as \"5s\"")
        for key in ("resolution", "aspect_ratio", "negative_prompt", "image_url", "provider"):
            if key in values and values[key] is not None and not isinstance(values[key], str):
                raise ValidationError(f"'{key}' must be a string")
        if "audio" in values and values["audio"] is not None and not isinstance(
            values["audio"], bool
        ):
            raise ValidationError("'audio' must be true or false")
        if "seed" in values and values["seed"] is not None and (
            not isinstance(values["seed"], int) or isinstance(values["seed"], bool)
        ):
            raise ValidationError("'seed' must be an integer")
        return cls(**values, options=opts)

    @classmethod
    def from_json(cls, text: str) -> JobRequest:
        return cls.from_dict(json.loads(text))


_DURATION = re.compile(r"^\s*(\d+)\s*s?\s*$")


def parse_duration(text: str) -> int:
    match = _DURATION.match(str(text))
    if not match:
        raise ValidationError(f"duration {text!r} is not a number of seconds such as \"5s\"")
    return int(match.group(1))


def normalize_duration(text: str) -> str:
    return f"{parse_duration(text)}s"


def validate_request(req: JobRequest, caps: ModelCaps) -> None:
    """Refuse, before any paid call, what the model's published constraints refuse.

    Raises ValidationError with one line that says what is wrong and how to fix it.
    """
    if req.model != caps.id:
        raise ValidationError(f"request is for {req.model}, capabilities are for {caps.id}")
    prompt = req.prompt.strip()
    if not prompt:
        raise ValidationError("the prompt is empty: describe the video you want")
    if len(req.prompt) > caps.prompt_limit:
        raise ValidationError(
            f"prompt is {len(req.prompt)} characters; {caps.id} takes at most {caps.prompt_limit}"
        )
    if req.negative_prompt is not None and caps.negative_prompt_limit is not None and len(
        req.negative_prompt
    ) > caps.negative_prompt_limit:
        raise ValidationError(
            f"negative prompt is {len(req.negative_prompt)} characters; "
            f"{caps.id} takes at most {caps.negative_prompt_limit}"
        )
    duration = normalize_duration(req.duration)
    if caps.durations and duration not in caps.durations:
        raise ValidationError(
            f"duration {req.duration} is not offered by {caps.id}; choose one of "
            + ", ".join(caps.durations)
        )
    if req.resolution is not None and caps.resolutions and req.resolution not in caps.resolutions:
        raise ValidationError(
            f"resolution {req.resolution} is not offered by {caps.id}; choose one of "
            + ", ".join(caps.resolutions)
        )
    if req.aspect_ratio is not None:
        if not caps.aspect_ratios:
            raise ValidationError(f"{caps.id} takes no aspect ratio: leave it out")
        if req.aspect_ratio not in caps.aspect_ratios:
            raise ValidationError(
                f"aspect ratio {req.aspect_ratio} is not offered by {caps.id}; choose one of "
                + ", ".join(caps.aspect_ratios)
            )
    if req.audio is not None and not caps.audio_configurable:
        raise ValidationError(f"{caps.id} does not let you switch audio: leave --audio out")
    if caps.requires_image and not req.image_url:
        raise ValidationError(f"{caps.id} is image-to-video: give an image (--image PATH_OR_URL)")
    if req.image_url and not (caps.accepts_image or caps.requires_image):
        raise ValidationError(f"{caps.id} takes no image: leave --image out or pick an i2v model")
    if req.image_url and not re.match(r"^(https?://|data:image/[a-z+.-]+;base64,)", req.image_url):
        raise ValidationError("image must be an http(s) URL, a data:image URL or a local file")
    unknown = set(req.options) - set(caps.options)
    if unknown:
        raise ValidationError(
            f"{caps.id} does not take option(s) {', '.join(sorted(unknown))}"
            + (f"; it takes {', '.join(caps.options)}" if caps.options else "")
        )


@dataclass(frozen=True)
class Job:
    """A job as the store holds it: a request plus everything learned since."""

    id: int
    request: JobRequest
    state: JobState
    created_at: float
    updated_at: float
    remote_id: str | None = None
    result_url: str | None = None  # provider download URL when there is one
    quote_usd: float | None = None  # what we showed before spending
    cost_usd: float | None = None  # what was charged (quote when no better figure)
    cost_is_estimate: bool = False
    file: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    error: str | None = None
    submitted_at: float | None = None
    started_at: float | None = None  # provider reported processing
    ready_at: float | None = None  # first poll that saw the video finished
    finished_at: float | None = None
    estimate_s: float | None = None  # provider's (P80) or learned expected run time
    progress: float | None = None  # 0..1, clamped; None when unknown
    remote_deleted: bool = False
    # The user's setting asked for the remote copy to go once ours is whole; set in the same
    # commit as `done`, cleared after the delete, so a crash in between still deletes it.
    delete_pending: bool = False

    @property
    def provider(self) -> str:
        return self.request.provider

    @property
    def model(self) -> str:
        return self.request.model

    @property
    def prompt(self) -> str:
        return self.request.prompt

    def with_(self, **changes: Any) -> Job:
        return replace(self, **changes)


def progress_of(elapsed_s: float, estimate_s: float | None) -> tuple[float | None, bool]:
    """Progress from an estimate: (fraction clamped below 1, overdue?).

    Venice's average_execution_time is a P80, so a job can run past it; we then say
    "overdue" instead of showing a 100 % that is a lie.
    """
    if not estimate_s or estimate_s <= 0:
        return None, False
    frac = elapsed_s / estimate_s
    if frac >= 1.0:
        return 0.99, True
    return max(0.0, frac), False


def now() -> float:
    return time.time()
