"""The one HTTP door every adapter goes through.

`HttpProvider.request` sends one request to the provider's API (or a result URL) and hands
back an `Answer`; adapters supply only their endpoints and `answer_error`, which turns an
answer into the provider error it carries. Everything that can turn HTTP against the user is
decided here, once:

- a POST never follows a redirect: a 3xx is `Redirected`, which says "may have reached the
  server" (a paid submit becomes `unknown`, never resent) and is never NotFound, so a
  redirect cannot mark a paid job expired;
- a GET follows at most `HttpPolicy.max_redirects` hops, and the key goes only to the API's
  own origin (`ApiAuth`; httpx also strips it on a cross-origin hop);
- every request has one overall deadline, connect to last byte, and a video body that
  crawls is abandoned (`TooSlow`, retryable) so the engine fetches it again with backoff;
- every httpx exception becomes a one-line error of the taxonomy in base.py, naming the
  host but never the path, query or key.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tui.providers.base import (
    AuthError,
    BadAnswer,
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
    Redirected,
    ServerError,
    TooSlow,
    VideoStream,
)
from tui.providers.keepalive import DEFAULT_LIMITS, NO_KEEPALIVE, KeptClient

CHUNK = 64 * 1024
# Everything httpx raises: InvalidURL and StreamError do not derive from HTTPError.
HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)


@dataclass(frozen=True)
class HttpPolicy:
    """How long and how far one request may go. Tests shrink these numbers."""

    deadline_s: float = 60.0  # one request: connect, send, headers and a JSON body together
    connect_s: float = 10.0
    max_redirects: int = 3  # GETs only (result URLs, /models); a POST follows none
    min_rate_bps: float = 1024.0  # a video body slower than this ...
    slow_window_s: float = 30.0  # ... over this long is abandoned and fetched again
    max_json_bytes: int = 32 * 1024 * 1024  # an answer that is not a video is never bigger
    keepalive: bool = True  # False: a new connection (and TLS handshake) for every request


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port: what must match before the key may go with a request."""
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, port


class ApiAuth(httpx.Auth):
    """Adds the bearer key to requests for the API's own origin and to nothing else."""

    def __init__(self, key: str | None, api_url: str) -> None:
        self._key = key
        self._origin = origin(httpx.URL(api_url))

    def __repr__(self) -> str:  # never show the key
        return f"ApiAuth(origin={self._origin!r}, key={'set' if self._key else 'unset'})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._key and origin(request.url) == self._origin:
            request.headers["Authorization"] = f"Bearer {self._key}"
        yield request


# ---------------------------------------------------------------- answers


def content_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Answer:
    """One answer, read whole (or, for a video, left streaming in `stream`)."""

    status: int
    headers: httpx.Headers
    body: bytes = b""
    stream: HttpVideoStream | None = None
    _payload: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    @property
    def content_type(self) -> str:
        return content_type(self.headers)

    def payload(self) -> Any:
        """The body as JSON, or None when it is not JSON (error answers often are not)."""
        if not self._parsed:
            self._parsed = True
            try:
                self._payload = json.loads(self.body) if self.body else None
            except (ValueError, RecursionError):
                self._payload = None
        return self._payload

    def json_object(self, what: str) -> dict[str, Any]:
        """The body as a JSON object, or BadAnswer saying what came instead."""
        payload = self.payload()
        if payload is None:
            kind = self.content_type or "no content type"
            hint = " (a proxy or login page?)" if kind == "text/html" else ""
            raise BadAnswer(f"{what}: the answer is {kind}, not JSON{hint}")
        if not isinstance(payload, dict):
            raise BadAnswer(f"{what}: the answer is JSON but not an object")
        return payload


def is_video(headers: Mapping[str, str]) -> bool:
    return content_type(headers) in ("video/mp4", "application/octet-stream")


def not_a_video(headers: Mapping[str, str]) -> bool:
    """Answers that are certainly no video (a page or an error), whatever a CDN labels."""
    kind = content_type(headers)
    return kind.startswith("text/") or kind in ("application/json", "application/xml")


# ---------------------------------------------------------------- errors


def where(request: httpx.Request | None) -> str:
    """`scheme://host:port` of a request: never its path or query (ids, signed tokens)."""
    if request is None:
        return "the server"
    url = request.url
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def _request_of(exc: httpx.HTTPError) -> httpx.Request | None:
    try:
        return exc.request
    except RuntimeError:  # raised before a request existed
        return None


def error_from_httpx(exc: Exception, what: str) -> ProviderError:
    """Any httpx exception → the taxonomy, in one line. `sent` is False only where the
    request certainly never left (no connection, or a request we could not even build)."""
    request = _request_of(exc) if isinstance(exc, httpx.HTTPError) else None
    host = where(request)
    name = type(exc).__name__
    if isinstance(exc, httpx.TooManyRedirects):
        return Redirected(f"{what}: more than the allowed redirects from {host} ({name})")
    if isinstance(exc, httpx.DecodingError):
        return BadAnswer(f"{what}: {host} sent a body that cannot be decoded ({name})")
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return NetworkError(f"{what}: timed out connecting to {host} ({name})", sent=False)
    if isinstance(exc, httpx.ConnectError):
        return NetworkError(f"{what}: could not connect to {host} ({name})", sent=False)
    if isinstance(exc, httpx.TimeoutException):
        return NetworkError(f"{what}: timed out waiting for {host} ({name})")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return NetworkError(f"{what}: the address is not a usable http(s) URL ({name})",
                            sent=False)
    if isinstance(exc, httpx.LocalProtocolError):
        return NetworkError(f"{what}: the request could not be sent to {host} ({name})",
                            sent=False)
    if isinstance(exc, httpx.RemoteProtocolError):
        return NetworkError(f"{what}: {host} broke the HTTP protocol (oversized headers, a "
                            f"cut-off or malformed answer) ({name})")
    return NetworkError(f"{what}: connection to {host} broke ({name})")


def error_for_status(status: int, message: str, *, retry_after: float | None = None,
                     detail: Mapping | None = None) -> ProviderError:
    """The common HTTP status → error type table (adapters refine messages before calling)."""
    kw: dict[str, Any] = {"status": status, "retry_after": retry_after, "detail": detail}
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


def url_error(answer: Answer, what: str) -> ProviderError | None:
    """A result URL's error: its body is a CDN's, not the API's, so only the status counts."""
    if answer.status < 400:
        return None
    gone = " (expired or deleted)" if answer.status in (403, 404, 410) else ""
    return error_for_status(answer.status,
                            f"{what}: the result URL answered {answer.status}{gone}")


def redirect_error(answer: Answer, what: str, method: str) -> Redirected:
    location = answer.headers.get("location", "")
    target = ""
    if location:
        try:
            url = httpx.URL(location)
            target = f" to {url.scheme}://{url.netloc.decode('ascii', 'replace')}" if url.host \
                else " to another path"
        except (httpx.InvalidURL, UnicodeError):
            target = " to an unusable address"
    why = (" wan-tui never follows a redirect on a POST; it may have reached the server"
           if method != "GET" else "")
    return Redirected(f"{what}: the server answered a redirect (HTTP {answer.status}"
                      f"{target});{why}".rstrip(";"), status=answer.status)


# ---------------------------------------------------------------- rate headers


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _num(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


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


# ---------------------------------------------------------------- video bodies


class HttpVideoStream(VideoStream):
    """A streaming response carrying a video body, abandoned if it crawls.

    Over every `slow_window_s` the body must bring `min_rate_bps * slow_window_s` bytes, or
    the read ends with TooSlow (retryable: the engine fetches again with backoff). A body
    that sends nothing at all is caught by the same window, not by a per-read timeout.
    """

    def __init__(self, response: httpx.Response, policy: HttpPolicy, what: str) -> None:
        self.response = response
        self.policy = policy
        self.what = what
        length = response.headers.get("content-length", "")
        self.content_length = int(length) if length.isdigit() else None
        self.content_type = response.headers.get("content-type", "")

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        window = self.policy.slow_window_s
        need = self.policy.min_rate_bps * window
        chunks = self.response.aiter_raw(CHUNK)
        window_end = loop.time() + window
        got = 0
        pending: asyncio.Future[bytes] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(chunks))
                done, _ = await asyncio.wait({pending}, timeout=max(0.0, window_end - loop.time()))
                if done:
                    try:
                        chunk = pending.result()
                    except StopAsyncIteration:
                        return
                    pending = None
                    got += len(chunk)
                    yield chunk
                if loop.time() >= window_end:
                    if got < need:
                        raise TooSlow(
                            f"{self.what}: {where(self.response.request)} sent {got} bytes in "
                            f"{window:g}s (under {self.policy.min_rate_bps:g} B/s); will fetch "
                            "again")
                    window_end = loop.time() + window
                    got = 0
        except HTTPX_ERRORS as exc:
            raise error_from_httpx(exc, self.what) from None
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                try:
                    await pending
                except (asyncio.CancelledError, StopAsyncIteration, *HTTPX_ERRORS):
                    pass

    async def aclose(self) -> None:
        await self.response.aclose()


# ---------------------------------------------------------------- the adapters' base


class HttpProvider(Provider):
    """One client per adapter, one request method, a bearer key that never shows."""

    not_configured = "this provider is not configured: set its API key"
    default_policy = HttpPolicy()

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: HttpPolicy | None = None,
    ) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.policy = policy or self.default_policy
        # A generous pool: one client per provider serves hundreds of jobs; the engine's
        # budget, not the pool, decides how many requests are in flight. Connections are kept
        # (a poll 100 ms away costs one round trip, not three and a TLS handshake), guarded so
        # that bytes past an answer's end close the connection instead of answering the next
        # request (keepalive.py).
        self._client = KeptClient(
            base_url=self.base_url + "/",
            auth=ApiAuth(api_key, self.base_url),
            follow_redirects=False,
            max_redirects=self.policy.max_redirects,
            # Waiting for a connection (pool) or making one ends well inside the deadline with
            # an error that proves nothing was sent, so a submit stuck there stays retryable.
            timeout=httpx.Timeout(self.policy.deadline_s, connect=self.policy.connect_s,
                                  pool=self.policy.connect_s),
            limits=DEFAULT_LIMITS if self.policy.keepalive else NO_KEEPALIVE,
            transport=transport,
            trust_env=transport is None,
        )

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}({self.base_url!r}, configured={self.configured})"

    @property
    def configured(self) -> bool:
        return bool(self._key)

    @property
    def key_fingerprint(self) -> str:
        # 12 hex digits: two keys of one team never collide in practice, and the hash of a
        # provider's long random key tells nothing about it.
        return hashlib.sha256(self._key.encode()).hexdigest()[:12] if self._key else ""

    def require_key(self) -> None:
        if not self._key:
            raise NotConfigured(self.not_configured)

    async def aclose(self) -> None:
        await self._client.aclose()

    # ------------------------------------------------------------ the one door

    def answer_error(self, answer: Answer, what: str) -> ProviderError | None:
        """The error an answer carries, or None. Adapters decode their own error bodies."""
        if answer.status >= 400:
            return error_for_status(answer.status, f"{what}: HTTP {answer.status}")
        return None

    async def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        rate_class: str | None = None,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        api: bool = True,
        need_key: bool = True,
        keep_streaming: Callable[[httpx.Response], bool] | None = None,
    ) -> Answer:
        """Send one request; return its answer or raise a ProviderError.

        `url` is a path under the API (`api=True`: the key is required and sent) or a full
        result URL (`api=False`: no key, whatever its host); `need_key=False` lets an API
        call go without a key (Venice's /models). A GET follows a few redirects,
        any other method none. `keep_streaming(response)` true leaves a 2xx body unread in
        `answer.stream` (a video), which the caller must close.
        """
        what = f"{self.label} {what}"
        if api and need_key:
            self.require_key()
        follow = method == "GET"
        response: httpx.Response | None = None
        try:
            async with asyncio.timeout(self.policy.deadline_s):
                request = self._client.build_request(method, url, json=body, params=params)
                response = await self._client.send(
                    request, stream=True, follow_redirects=follow,
                    auth=httpx.USE_CLIENT_DEFAULT if api else None,
                )
                if rate_class is not None:
                    self.observe_rate(rate_class, rate_info_from_headers(response.headers))
                if (keep_streaming is not None and 200 <= response.status_code < 300
                        and keep_streaming(response)):
                    answer = Answer(response.status_code, response.headers,
                                    stream=HttpVideoStream(response, self.policy, what))
                    response = None  # the caller owns it now
                    return answer
                data = await self._read_capped(response, what)
                answer = Answer(response.status_code, response.headers, data)
        except TimeoutError:
            # Money: a POST that timed out may have been accepted, so `sent` stays True.
            raise NetworkError(
                f"{what}: no whole answer from {self._host_of(url)} within "
                f"{self.policy.deadline_s:g}s"
            ) from None
        except HTTPX_ERRORS as exc:
            raise error_from_httpx(exc, what) from None
        finally:
            if response is not None:
                await response.aclose()
        if 300 <= answer.status < 400:
            raise redirect_error(answer, what, method)
        error = self.answer_error(answer, what) if api else url_error(answer, what)
        if error is not None:
            raise error
        return answer

    def _host_of(self, url: str) -> str:
        try:
            full = self._client.base_url.join(url)
            return f"{full.scheme}://{full.netloc.decode('ascii', 'replace')}"
        except (httpx.InvalidURL, UnicodeError, TypeError):
            return "the server"

    async def _read_capped(self, response: httpx.Response, what: str) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.policy.max_json_bytes:
                raise BadAnswer(f"{what}: the answer is larger than "
                                f"{self.policy.max_json_bytes} bytes; refused")
            parts.append(chunk)
        return b"".join(parts)

    async def open_url(self, url: str, what: str) -> HttpVideoStream:
        """GET a result URL as a video stream, without the key (it belongs to a CDN)."""
        answer = await self.request("GET", url, what=what, api=False,
                                    keep_streaming=lambda r: not not_a_video(r.headers))
        if answer.stream is None:  # 2xx, but a page or JSON instead of a video
            raise BadAnswer(f"{self.label} {what}: the result URL answered "
                            f"{answer.content_type or 'no content type'}, not a video")
        return answer.stream
