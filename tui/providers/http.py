"""HTTP pieces every adapter shares: transport-error mapping, rate headers, video streams."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Mapping

import httpx

from tui.providers.base import (
    AuthError,
    ContentPolicy,
    Forbidden,
    InsufficientBalance,
    InvalidRequest,
    NetworkError,
    NotConfigured,
    NotFound,
    Provider,
    ProviderError,
    RateInfo,
    RateLimited,
    ServerError,
    VideoStream,
)

CHUNK = 64 * 1024


def make_client(timeout: float = 30.0) -> httpx.AsyncClient:
    # A generous pool: one client per provider serves hundreds of jobs; the engine's budget,
    # not the pool, decides how many requests are in flight.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=10.0),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        follow_redirects=True,
    )


def raise_for_transport(exc: httpx.TransportError, what: str) -> ProviderError:
    """Turn an httpx transport failure into a NetworkError that knows if it may have been sent.

    Only a failure to connect (or to get a pooled connection) proves the request never left;
    after that, a timeout or reset may come after the server accepted -- and charged.
    """
    certainly_not_sent = isinstance(
        exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    if isinstance(exc, httpx.TimeoutException):
        reason = "timed out"
    elif isinstance(exc, httpx.ConnectError):
        reason = "could not connect"
    else:
        reason = "connection broke"
    try:  # name the host (never the path or query: they may carry ids or tokens)
        url = exc.request.url
        reason += f" to {url.scheme}://{url.netloc.decode()}"
    except (RuntimeError, AttributeError):
        pass
    return NetworkError(f"{what}: {reason} ({type(exc).__name__})", sent=not certainly_not_sent)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _num(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def rate_info_from_headers(headers: Mapping[str, str]) -> RateInfo:
    limit = _num(headers, "x-ratelimit-limit-requests")
    remaining = _num(headers, "x-ratelimit-remaining-requests")
    return RateInfo(
        limit=int(limit) if limit is not None else None,
        remaining=int(remaining) if remaining is not None else None,
        reset_at=_num(headers, "x-ratelimit-reset-requests"),
        retry_after=parse_retry_after(headers.get("retry-after")),
        balance_usd=_num(headers, "x-venice-balance-usd"),
    )


def error_for_status(status: int, message: str, *, retry_after: float | None = None,
                     detail: Mapping | None = None) -> ProviderError:
    """The common HTTP status → error type table (adapters refine messages before calling)."""
    kw = {"status": status, "retry_after": retry_after, "detail": detail}
    if status in (400, 413):
        return InvalidRequest(message, **kw)
    if status == 401:
        return AuthError(message, **kw)
    if status == 402:
        return InsufficientBalance(message, **kw)
    if status in (403, 409):
        return Forbidden(message, **kw)
    if status in (404, 410):
        return NotFound(message, **kw)
    if status == 422:
        return ContentPolicy(message, **kw)
    if status == 429:
        return RateLimited(message, **kw)
    return ServerError(message, **kw)


def is_video(response: httpx.Response) -> bool:
    ctype = response.headers.get("content-type", "")
    return ctype.split(";")[0].strip().lower() in ("video/mp4", "application/octet-stream")


class HttpVideoStream(VideoStream):
    """A streaming httpx response carrying a video body."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        length = response.headers.get("content-length")
        self.content_length = int(length) if length and length.isdigit() else None
        self.content_type = response.headers.get("content-type", "")

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.aiter_raw(CHUNK):
                yield chunk
        except httpx.TransportError as exc:
            raise raise_for_transport(exc, "download") from exc

    async def aclose(self) -> None:
        await self.response.aclose()


async def open_url_stream(client: httpx.AsyncClient, url: str, what: str) -> HttpVideoStream:
    """GET a result URL as a stream. No auth header: these URLs belong to third parties."""
    try:
        request = client.build_request("GET", url)
        response = await client.send(request, stream=True)
    except httpx.TransportError as exc:
        raise raise_for_transport(exc, what) from exc
    if response.status_code != 200:
        await response.aread()
        await response.aclose()
        raise error_for_status(
            response.status_code,
            f"{what}: the result URL answered {response.status_code}"
            + (" (expired or deleted)" if response.status_code in (403, 404, 410) else ""),
        )
    return HttpVideoStream(response)


class HttpProvider(Provider):
    """The plumbing every adapter shares: one client, a bearer key that never shows."""

    not_configured = "this provider is not configured: set its API key"
    default_timeout = 30.0

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._client = client or make_client(timeout or self.default_timeout)
        self._own_client = client is None

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}({self.base_url!r}, configured={self.configured})"

    @property
    def configured(self) -> bool:
        return bool(self._key)

    def _headers(self) -> dict[str, str]:
        """Auth for API calls only: result URLs on third-party hosts get none."""
        if not self._key:
            raise NotConfigured(self.not_configured)
        return {"Authorization": f"Bearer {self._key}"}

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
