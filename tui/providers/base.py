"""The one small interface every provider adapter implements, and its shared vocabulary.

Adapters turn their provider's quirks into these outcome types and their HTTP errors into
the error taxonomy below. They never touch the UI or SQL.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tui.errors import EXIT_USAGE, WanError
from tui.jobs import Job, JobRequest, ModelCaps, ValidationError, validate_request
from tui.providers.billing import Balance, Ledger

# ---------------------------------------------------------------- outcomes of a poll


@dataclass(frozen=True)
class Processing:
    """Still running. `estimate_s` is the provider's expected total run time if it sent one."""

    progress: float | None = None
    estimate_s: float | None = None
    elapsed_s: float | None = None
    queued: bool = False  # provider says it has not started yet


@dataclass
class Ready:
    """Finished. Either a response already streaming the video, or a URL to fetch it from."""

    url: str | None = None
    stream: VideoStream | None = None


@dataclass(frozen=True)
class Failed:
    code: str
    message: str
    retryable: bool = False  # a new paid job might succeed (e.g. capacity), not a free retry
    refunded: bool | None = None


@dataclass(frozen=True)
class Gone:
    """The remote media is gone: expired, deleted or never existed (404)."""

    message: str = "the provider no longer has this video (expired or deleted)"


Outcome = Processing | Ready | Failed | Gone


@dataclass(frozen=True)
class Quote:
    usd: float
    estimate: bool = False  # True when computed from a published price table, not the API

    def label(self) -> str:
        return f"~${self.usd:.2f} (estimate)" if self.estimate else f"${self.usd:.2f}"


@dataclass(frozen=True)
class Submitted:
    remote_id: str
    result_url: str | None = None  # Venice download_url for models whose retrieve has no bytes


@dataclass(frozen=True)
class RateInfo:
    """What a provider's answer said about the caller's budget (all optional)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # Unix time
    retry_after: float | None = None  # seconds
    balance_usd: float | None = None


class VideoStream(abc.ABC):
    """An open response carrying video bytes. Always closed by whoever consumes it."""

    content_length: int | None
    content_type: str

    @abc.abstractmethod
    def iter_bytes(self) -> AsyncIterator[bytes]: ...

    @abc.abstractmethod
    async def aclose(self) -> None: ...


# ---------------------------------------------------------------- the error taxonomy


class ProviderError(WanError):
    """Base of every error an adapter raises. `str(err)` is one line for a human.

    `sent` says whether the request may have reached the server: it decides whether a
    submit can be retried without risking a second charge.
    """

    kind = "provider_error"
    retryable = False  # safe to repeat the same call later (for submit: only if not sent)
    sent: bool = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        detail: Mapping[str, Any] | None = None,
        sent: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.detail = dict(detail or {})
        if sent is not None:
            self.sent = sent


class InvalidRequest(ProviderError):  # 400, 413
    kind = "invalid_request"
    sent = False  # refused: nothing charged
    exit_status = EXIT_USAGE  # the user can fix it (key, balance, request)


class AuthError(ProviderError):  # 401
    kind = "auth"
    sent = False
    exit_status = EXIT_USAGE  # the user can fix it (key, balance, request)


class InsufficientBalance(ProviderError):  # 402
    kind = "insufficient_balance"
    sent = False
    exit_status = EXIT_USAGE  # the user can fix it (key, balance, request)


class Forbidden(ProviderError):  # 403, 409 consent
    kind = "forbidden"
    sent = False


class NotFound(ProviderError):  # 404 -- media expired/deleted
    kind = "not_found"


class ContentPolicy(ProviderError):  # 422
    kind = "content_policy"
    sent = False


class RateLimited(ProviderError):  # 429: certainly not accepted
    kind = "rate_limited"
    retryable = True
    sent = False


class ServerError(ProviderError):  # 500 / 503 / 504: may have been accepted
    kind = "server_error"
    retryable = True


class NetworkError(ProviderError):
    """Transport failure. `sent=False` for refused connections (safe to retry a submit)."""

    kind = "network"
    retryable = True


class TooSlow(NetworkError):
    """A video body crawled (under the policy's minimum rate): abandoned, fetched again."""

    kind = "too_slow"


class Redirected(ProviderError):
    """The server answered with a redirect we do not follow (any POST), or too many of them.

    `sent` stays True: a redirected paid submit may have reached the server, so it becomes
    `unknown`, never resent. Never a NotFound: a redirect must not mark a paid job expired.
    """

    kind = "redirected"
    retryable = True  # a poll may be asked again later; a submit is never resent (sent)


class BadAnswer(ProviderError):
    """The provider answered something we cannot read (malformed JSON, missing fields)."""

    kind = "bad_answer"
    retryable = True


class LocalRefusal(InvalidRequest):
    """Refused by the adapter's own check before any request: nothing was sent or spent.

    Raised by the network methods for what `validate` would refuse, so a caller that only
    handles ProviderError still gets it; a form tells it apart from the provider's answer.
    """

    kind = "local"


def check_locally(validate: Callable[[JobRequest], None], req: JobRequest) -> None:
    """Run an adapter's `validate`; its ValidationError becomes a LocalRefusal."""
    try:
        validate(req)
    except ValidationError as err:
        raise LocalRefusal(str(err), sent=False) from None


class NotConfigured(ProviderError):
    kind = "not_configured"
    sent = False
    exit_status = EXIT_USAGE  # the user can fix it (key, balance, request)


class Unsupported(ProviderError):
    """The provider has no such operation (APIXO cannot delete)."""

    kind = "unsupported"
    sent = False


# ---------------------------------------------------------------- the interface


@dataclass(frozen=True)
class OptionSpec:
    """One provider-specific option (a name in `ModelCaps.options`), described so a form can
    offer it without knowing the provider. The adapter still checks every value."""

    name: str
    kind: str = "text"  # "bool" (a switch), "choice" (one of `choices`), "list", "text"
    choices: tuple[str, ...] = ()
    hint: str = ""  # what to type, for text and list options


@dataclass
class ProviderInfo:
    name: str
    label: str
    configured: bool
    can_delete: bool
    can_quote: bool  # False: quotes are estimates from a price table
    batch_poll: bool = False
    takes_seed: bool = False  # its models take a seed: a variation gets a new one
    notes: list[str] = field(default_factory=list)
    options: dict[str, OptionSpec] = field(default_factory=dict)  # by option name


class Provider(abc.ABC):
    """One hosted video API. Instances are cheap; they share one httpx client each."""

    name: str = ""
    label: str = ""
    can_delete: bool = True
    can_quote: bool = True
    batch_poll: bool = False
    reports_estimate: bool = False  # True when polls carry an expected run time
    # Its video models take a seed (the same seed and prompt give a similar video), so a
    # variation can ask for a different one; without it a variation is the request again.
    takes_seed: bool = False

    # The options its models list in `ModelCaps.options`, described for forms.
    option_specs: tuple[OptionSpec, ...] = ()

    # Budgets the engine's rate limiter keeps per provider key: "queue" and "retrieve".
    default_limits_per_minute: Mapping[str, int] = {"queue": 40, "retrieve": 120}

    def __init__(self) -> None:
        self.last_rate: dict[str, RateInfo] = {}
        self.balance_usd: float | None = None
        # The engine's request budget listens here: every answer's rate headers feed it.
        self.rate_observer: Callable[[str, RateInfo], None] | None = None

    def observe_rate(self, rate_class: str, info: RateInfo) -> None:
        self.last_rate[rate_class] = info
        if info.balance_usd is not None:
            self.balance_usd = info.balance_usd
        if self.rate_observer is not None:
            self.rate_observer(rate_class, info)

    @property
    def configured(self) -> bool:
        return True

    @property
    def key_fingerprint(self) -> str:
        """A short hash of the API key: names the key (a team's engines share its rate
        budget through the database) without holding it. "" when there is no key."""
        return ""

    def info(self) -> ProviderInfo:
        return ProviderInfo(
            name=self.name,
            label=self.label,
            configured=self.configured,
            can_delete=self.can_delete,
            can_quote=self.can_quote,
            batch_poll=self.batch_poll,
            takes_seed=self.takes_seed,
            options={spec.name: spec for spec in self.option_specs},
        )

    def normalize(self, req: JobRequest) -> JobRequest:
        """Spellings the provider's docs use that map onto one of our model ids."""
        return req

    def validate(self, req: JobRequest, caps: ModelCaps) -> None:
        """Refuse locally what the provider would refuse (adapters add their own rules)."""
        validate_request(req, caps)

    @abc.abstractmethod
    async def list_models(self) -> list[ModelCaps]:
        """Fetch capabilities from the provider (callers cache them)."""

    @abc.abstractmethod
    async def quote(self, req: JobRequest) -> Quote: ...

    @abc.abstractmethod
    async def submit(self, req: JobRequest) -> Submitted:
        """The paid call. Raises ProviderError; `err.sent` tells if it may have been charged."""

    @abc.abstractmethod
    async def poll(self, job: Job) -> Outcome:
        """One status request. A 404 is returned as Gone, other HTTP errors are raised."""

    async def poll_many(self, jobs: list[Job]) -> dict[int, Outcome | ProviderError]:
        """Poll several jobs; providers with a batch endpoint do it in one request."""
        out: dict[int, Outcome | ProviderError] = {}
        for job in jobs:
            try:
                out[job.id] = await self.poll(job)
            except ProviderError as err:
                out[job.id] = err
        return out

    @abc.abstractmethod
    async def open_download(self, job: Job) -> VideoStream:
        """Start streaming a finished job's video (fresh request: used after a cut-off)."""

    async def delete(self, job: Job) -> None:
        raise Unsupported(f"{self.label or self.name} has no way to delete remote media")

    # The provider's own word on money (billing.py). Without it: no balance, no ledger.
    has_ledger: bool = False

    async def balance(self) -> Balance | None:
        """The balance the key spends from and whether it may spend (None: not published)."""
        return None

    async def ledger(self, start: float, end: float) -> Ledger:
        """The key's charges in [start, end) (Unix times), in the order they were made."""
        raise Unsupported(f"{self.label or self.name} publishes no ledger of charges")

    async def aclose(self) -> None:  # noqa: B027 -- optional hook, not abstract
        """Release the HTTP client."""

    def rate_class(self, operation: str) -> str:
        """Which budget an operation spends: 'queue' for submits, 'retrieve' otherwise."""
        return "queue" if operation == "submit" else "retrieve"
