"""The domain: requests, jobs, their states and the rules between them.

Plain Python only -- no Textual, no httpx, no SQL -- so every layer can import it
and most behaviour can be tested without IO.
"""

from __future__ import annotations

import copy
import enum
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field, fields, replace
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

# A take's pick: kept or set aside. Not a state: a pick says nothing about the job's life,
# and any job (usually a finished one) may carry one.
PICKS = ("star", "reject")
PICK_GLYPHS = {"star": "★", "reject": "✘"}


def check_pick(pick: str | None) -> str | None:
    """`pick` itself when it is one of PICKS or None (cleared); ValidationError otherwise."""
    if pick is not None and pick not in PICKS:
        raise ValidationError(f"pick {pick!r}: use star, reject or none")
    return pick

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
    # Settled by the user (`wan-tui resolve`): not charged or charged without an id ->
    # cancelled; charged, and the id found on the provider's site -> followed from queued.
    JobState.UNKNOWN: frozenset({JobState.CANCELLED, JobState.QUEUED}),
}


class TransitionError(WanError, ValueError):
    """A state change the job's life does not allow (a bug, not the user's input)."""


def check_transition(old: JobState, new: JobState) -> None:
    if new == old:
        return
    if new not in _ALLOWED[old]:
        raise TransitionError(f"a job cannot go from {old} to {new}")


class ValidationError(WanError, ValueError):
    """A request the provider would refuse. The message is one line for a human; `field`
    names the request field at fault when there is one."""

    exit_status = EXIT_USAGE

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Deprecation:
    date: str | None = None
    replacement: str | None = None
    auto_remap: bool = False  # the provider may run requests on `replacement` instead

    def remap_note(self) -> str:
        """What happens to a request for the model: Venice may run another model on it."""
        if self.auto_remap and self.replacement:
            return f"Venice may run requests for it on {self.replacement} instead"
        return ""

    def warning(self, model: str) -> str:
        """One line said before a job for a deprecated model is submitted."""
        when = f" (retired {self.date[:10]})" if self.date else ""
        use = f"; use {self.replacement}" if self.replacement else ""
        remap = f"; {self.remap_note()}" if self.remap_note() else ""
        return f"{model} is deprecated{when}{use}{remap}"


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
        # Field by field rather than asdict(): that deep-copies every value, and a
        # 100 000-job history spends seconds there. Only `options` can hold nested values.
        out: dict[str, Any] = {}
        for name in _REQUEST_FIELDS:
            value = getattr(self, name)
            if value is None or value == {}:
                continue
            out[name] = copy.deepcopy(value) if name == "options" else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRequest:
        """Build from a batch line or the user's arguments, checking every field's type and
        every number; unknown keys become provider options (checked the same way).

        Refusals are ValidationError("field: reason"), one line each."""
        if not isinstance(data, dict):
            raise ValidationError("expected an object with model, prompt, ...")
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known and k != "options"}
        model = values.get("model")
        if not isinstance(model, str) or not model.strip():
            raise ValidationError(
                "model: missing (a model id such as wan-2.5-preview-text-to-video)",
                field="model")
        if not isinstance(values.get("prompt"), str):
            raise ValidationError("prompt: missing (the text that describes the video)",
                                  field="prompt")
        for key in ("model", "prompt", "resolution", "aspect_ratio", "negative_prompt",
                    "image_url", "provider"):
            if values.get(key) is not None:
                values[key] = check_text(key, values[key])
        if "duration" in values:
            values["duration"] = duration_field(values["duration"])
        if values.get("audio") is not None and not isinstance(values["audio"], bool):
            raise ValidationError("audio: must be true or false", field="audio")
        if values.get("seed") is not None:
            values["seed"] = whole_number("seed", values["seed"], SEED_RANGE)
        options = data.get("options")
        if options is not None and not isinstance(options, dict):
            raise ValidationError(
                'options: must be an object such as {"shot_type": "multi"}', field="options")
        # Batch files use the queue body's keys: negative_prompt etc. match already;
        # anything else provider-specific lands in options when the adapter knows it.
        opts = {}
        for key, value in [*(options or {}).items(),
                           *((k, data[k]) for k in sorted(set(data) - known, key=str))]:
            opts[check_option_name(key)] = check_option_value(key, value)
        return cls(**values, options=opts)

    @classmethod
    def from_json(cls, text: str) -> JobRequest:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_stored(cls, text: str) -> JobRequest:
        """A request as the history holds it: it was checked when it was recorded, and a
        stricter check added since must never make an old history unreadable."""
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known and k != "options"}
        options = data.get("options")
        return cls(**values, options=dict(options) if isinstance(options, dict) else {})

_REQUEST_FIELDS = tuple(f.name for f in fields(JobRequest))


def price_key(req: JobRequest) -> tuple[object, ...]:
    """What a price depends on: requests of the same shape are quoted once (the engine's
    quote cache and the submit form both key on this)."""
    return (req.provider, req.model, req.duration, req.resolution, req.aspect_ratio, req.audio)


# ------------------------------------------------------------ checking one field

# Limits that keep generated or hostile input from costing memory or time. Prompt limits
# proper are the model's (validate_request); these only bound what could never be sent.
MAX_TEXT_CHARS = 100_000  # any one text field except image_url (a data: URL may be MBs)
MAX_OPTION_DEPTH = 8  # nested option values ({"a": [[...]]}): the APIs take two at most
MAX_DURATION_S = 3600  # no hosted model renders more than minutes; bounds the digits too
# Signed 64-bit: what every provider's JSON parser and SQLite can hold without rounding.
SEED_RANGE = (-(2**63), 2**63 - 1)
_OPTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_text(field: str, value: object) -> str:
    """A string that can be stored and sent: no NUL, no lone surrogate (what a bad
    `\\ud800` escape or a non-UTF-8 argument turns into), bounded length."""
    if not isinstance(value, str):
        raise ValidationError(f"{field}: must be text, not {_type_name(value)}", field=field)
    if field != "image_url" and len(value) > MAX_TEXT_CHARS:
        raise ValidationError(f"{field}: {len(value)} characters is far too long", field=field)
    if "\x00" in value:
        raise ValidationError(f"{field}: contains a NUL character", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{field}: contains something that is not valid Unicode text",
                              field=field) from None
    return value


def whole_number(field: str, value: object, bounds: tuple[int, int]) -> int:
    """An integer, or a float that is exactly one (JSON writes 5.0 for 5); finite, in range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field}: must be a whole number, not {_type_name(value)}",
                              field=field)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{field}: {value} is not a finite number", field=field)
        if not value.is_integer():
            raise ValidationError(f"{field}: {value:g} is not a whole number", field=field)
        value = int(value)
    low, high = bounds
    if not low <= value <= high:
        raise ValidationError(f"{field}: must be between {low} and {high}", field=field)
    return value


def duration_field(value: object) -> str:
    """`5`, `5.0`, `"5"`, `"5s"` are five seconds; `5.9` is refused, never rounded (the
    user would pay for a length they did not ask for)."""
    if isinstance(value, str):
        seconds = parse_duration(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
            raise ValidationError(f"duration: {value:g} is not a whole number of seconds",
                                  field="duration")
        seconds = whole_number("duration", value, (1, MAX_DURATION_S))
    else:
        raise ValidationError(
            f'duration: must be a number of seconds such as "5s", not {_type_name(value)}',
            field="duration")
    if not 1 <= seconds <= MAX_DURATION_S:
        raise ValidationError(f"duration: must be between 1 and {MAX_DURATION_S} seconds",
                              field="duration")
    return f"{seconds}s"


def check_option_name(name: object) -> str:
    if not isinstance(name, str) or not _OPTION_NAME.match(name):
        raise ValidationError(
            f"option {str(name)[:40]!r}: a name is letters, digits and _ (such as shot_type)",
            field="options")
    return name


def check_option_value(name: str, value: object, depth: int = 0) -> Any:
    """A JSON value a provider can receive: finite numbers, valid text, shallow nesting."""
    if depth > MAX_OPTION_DEPTH:
        raise ValidationError(f"{name}: nested more than {MAX_OPTION_DEPTH} levels deep",
                              field=name)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return whole_number(name, value, SEED_RANGE)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{name}: {value} is not a finite number", field=name)
        return value
    if isinstance(value, str):
        return check_text(name, value)
    if isinstance(value, list | tuple):
        return [check_option_value(name, item, depth + 1) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"{name}: object keys must be text", field=name)
            out[check_text(name, key)] = check_option_value(name, item, depth + 1)
        return out
    raise ValidationError(f"{name}: cannot send {_type_name(value)}", field=name)


# At most six digits: a longer run is refused here instead of costing a huge int() (or the
# ValueError Python raises past 4300 digits).
_DURATION = re.compile(r"^\s*(\d{1,6})\s*s?\s*$")


def parse_duration(text: str) -> int:
    match = _DURATION.match(str(text)[:64])
    if not match:
        raise ValidationError(f"duration {text!r} is not a number of seconds such as \"5s\"")
    return int(match.group(1))


def normalize_duration(text: str) -> str:
    return f"{parse_duration(text)}s"


def validate_request(req: JobRequest, caps: ModelCaps) -> None:
    """Refuse, before any paid call, what the model's published constraints refuse.

    Raises ValidationError with one line that says what is wrong and how to fix it.
    """
    # Every field's type and number again, whoever built the request (a batch line, the
    # CLI, the submit screen): only what from_dict accepts may reach a paid call.
    JobRequest.from_dict(req.to_dict())
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
class VideoFacts:
    """What a downloaded video holds, read by decoding it (tui.media.probe)."""

    width: int
    height: int
    duration_s: float
    fps: float
    video_codec: str
    audio_codec: str | None = None  # None: the file has no audio track
    bitrate: int | None = None  # bits per second over the whole file
    # Sampled-frame measures behind the "possibly moderated" hint (tui.media.facts):
    dark: float = 0.0  # fraction of sampled frames that are nearly black
    motion: float | None = None  # largest mean luma change between sampled frames (0-255)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoFacts:
        # Keys a newer wan-tui may have written are ignored, not an error: history is shared.
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


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
    # Jobs recorded together (one submit of many, a batch file) share the id of the first.
    batch_id: int | None = None
    # The job this one was made from ("like this", a variation): its lineage, `from:N`.
    source_id: int | None = None
    video: VideoFacts | None = None  # what the downloaded file holds (tui.media.probe)
    # sha256 -> how many times a whole copy with those bytes failed its check: the same bytes
    # failing three times settle the job instead of being fetched forever.
    rejects: dict[str, int] = field(default_factory=dict)
    # The user's verdict on the take (PICKS: "star" keeps it, "reject" sets it aside; None:
    # not judged yet) and when it was given. Set from the web gallery or the dashboard.
    pick: str | None = None
    picked_at: float | None = None
    # On a team's shared history: the machine whose disk holds `file` (its engine name);
    # None on one person's history, where every file is on this machine.
    file_host: str | None = None
    # On a team's history, who follows the job (tui/engine/leases.py): the engine it was
    # recorded on (`origin`, whose machine gets the video), the engine holding its lease
    # (`owner`, until `lease_until`), and the lease's epoch, which fences every write.
    origin: str | None = None
    owner: str | None = None
    lease_epoch: int = 0
    lease_until: float | None = None

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


@dataclass(frozen=True)
class Settlement:
    """How the user's answer about an `unknown` job is written down."""

    state: JobState
    detail: str
    fields: dict[str, Any]


def settle_unknown(job: Job, *, charged: bool, now: float,
                   remote_id: str | None = None) -> Settlement:
    """The user checked the provider about a job whose submit answer never arrived.

    Not charged: cancelled at $0, and today's spend drops its quote. Charged: its quote
    becomes its cost (dated when it was sent, so it counts on the right day); with the
    provider's id for it, wan-tui follows it from `queued` and downloads the video,
    without one it is cancelled (nothing to follow) and the money is on the record.
    """
    if job.state != JobState.UNKNOWN:
        raise ValidationError(f"job {job.id} is {job.state}, not unknown: nothing to settle")
    if not charged:
        if remote_id:
            raise ValidationError("a job with a remote id was sent: use --charged with it")
        return Settlement(JobState.CANCELLED,
                          "settled by you: not charged (checked on the provider)",
                          {"cost_usd": 0.0, "cost_is_estimate": False, "finished_at": now})
    sent_at = job.submitted_at or job.updated_at
    cost = job.cost_usd if job.cost_usd is not None else job.quote_usd
    fields: dict[str, Any] = {"cost_usd": cost, "submitted_at": sent_at}
    if remote_id is not None:
        remote_id = check_text("remote id", remote_id).strip()
        if not remote_id or len(remote_id) > 200 or any(c.isspace() for c in remote_id):
            raise ValidationError("remote id: one word, as the provider shows it")
        return Settlement(JobState.QUEUED,
                          f"settled by you: charged, provider id {remote_id}; following it",
                          {**fields, "remote_id": remote_id, "error": None})
    return Settlement(
        JobState.CANCELLED,
        "settled by you: charged at the quoted price; no provider id, so the video cannot "
        "be fetched here (get it on the provider's site)",
        {**fields, "finished_at": now})


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
