"""Kept connections that a lying server cannot poison.

Keep-alive saves a TCP and a TLS handshake on every poll, submit and download, but on HTTP/1.1
a connection is only as good as the last answer on it: bytes a server sent past its
Content-Length would be read as the answer to the next request on that connection (job A's
queue id or video given to job B). httpcore already drops an idle connection whose socket
turns readable before it is reused; what it does not look at is bytes that came in the same
read as the end of the last answer and wait in h11's buffer. `GuardedHTTP11` closes such a
connection when the answer is closed, so it is never reused. An answer left half-read (a
video abandoned, a deadline hit) already closes its connection in httpcore.

What no client can catch: bytes a server sends only after the next request went out look like
that request's answer. That is HTTP/1.1's own limit; the adapters' answer checks (a queue id
where one is expected, a video's content type) are the last guard there.

The hooks are httpcore's (1.0.x) private class names, kept to two small overrides; the tests
in tests/test_hostile_http.py fail if an httpcore upgrade moves them.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpcore
import httpx

# An idle connection is kept this long. Servers keep theirs open much longer (tens of seconds
# or more), so wan-tui gives a connection up well before the server could close it under a
# request (which would make a sent submit ambiguous), and a poll every few seconds still
# finds it.
KEEPALIVE_EXPIRY_S = 5.0
DEFAULT_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64,
                              keepalive_expiry=KEEPALIVE_EXPIRY_S)
NO_KEEPALIVE = httpx.Limits(max_connections=64, max_keepalive_connections=0)  # benchmarks


class GuardedHTTP11(httpcore.AsyncHTTP11Connection):
    """An HTTP/1.1 connection closed, never pooled, when an answer leaves unread bytes."""

    async def _response_closed(self) -> None:
        unread, closed = self._h11_state.trailing_data
        if unread or closed:
            await self.aclose()
            return
        await super()._response_closed()


class GuardedConnection(httpcore.AsyncHTTPConnection):
    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        response = await super().handle_async_request(request)
        # The HTTP/1.1 connection is made inside httpcore on the first request; it becomes the
        # guarded kind before its first answer can be closed (HTTP/2 frames carry their own
        # lengths, so an HTTP/2 connection needs no guard).
        inner = self._connection
        if type(inner) is httpcore.AsyncHTTP11Connection:
            inner.__class__ = GuardedHTTP11
        return response


class GuardedPool(httpcore.AsyncConnectionPool):
    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        if self._proxy is not None:  # never set: proxies have their own pool classes
            return super().create_connection(origin)
        return GuardedConnection(
            origin=origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
            http1=self._http1,
            http2=self._http2,
            retries=self._retries,
            local_address=self._local_address,
            uds=self._uds,
            network_backend=self._network_backend,
            socket_options=self._socket_options,
        )


class KeptTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a `GuardedPool` (certificates as httpx finds them:
    SSL_CERT_FILE / SSL_CERT_DIR when the environment is trusted, else certifi)."""

    def __init__(self, limits: httpx.Limits, *, trust_env: bool = True,
                 verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(limits=limits, trust_env=trust_env, verify=verify)
        self._pool = GuardedPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=trust_env),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )


class KeptClient(httpx.AsyncClient):
    """An AsyncClient whose direct connections are guarded. A proxy named in the environment
    still gets httpx's own transport, unguarded: the proxy's connection, not the API's."""

    def _init_transport(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = DEFAULT_LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.AsyncBaseTransport:
        if transport is not None:
            return transport
        return KeptTransport(limits, trust_env=trust_env,
                             verify=verify if not isinstance(verify, str) else True)
