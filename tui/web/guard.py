"""Who may talk to the gallery: the token, the Host header, same-origin POSTs.

The gallery serves a user's videos and prompts on a port any local process (and, through a
browser, any web page) can reach, so every request is checked before routing:

- the token: from `?token=` on the first visit (then moved into a cookie and dropped from the
  address bar, as Jupyter does) or from the cookie; compared in constant time;
- the Host header must name this server (a loopback name, or a name the user allowed), so a
  DNS-rebinding page whose own name resolves to 127.0.0.1 is refused;
- a POST must also carry the token in a header (a cookie alone rides along with any cross-
  site form) and an Origin equal to the page's own.

Pure ASGI middleware, so nothing behind it runs for a refused request.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_HEADER = "x-wan-tui-token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def new_token() -> str:
    return secrets.token_urlsafe(24)


def cookie_name(port: int) -> str:
    # Browsers keep cookies per host name, not per port: two galleries on one machine
    # (two users, two homes) must not overwrite each other's token.
    return f"wan_tui_token_{port}"


def host_name(host_header: str) -> str:
    """`localhost:8790` -> `localhost`; `[::1]:8790` -> `[::1]`; lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host


# Every answer: no framing (a page of another site could click the pick keys through an
# invisible frame), no sniffing, no Referer carrying the address out.
_SAFETY_HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                   (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store")]


def _with_safety_headers(send: Send) -> Send:
    async def sending(message: dict) -> None:
        if message["type"] == "http.response.start":
            known = {k.lower() for k, _ in message.get("headers", [])}
            message = {**message, "headers": [*message.get("headers", []), *(
                (k, v) for k, v in _SAFETY_HEADERS if k not in known)]}
        await send(message)
    return sending  # type: ignore[return-value]


class Guard:
    """Refuses any request without the token, with a foreign Host, or a cross-site POST."""

    def __init__(self, app: ASGIApp, *, token: str, port: int, hosts: Iterable[str]) -> None:
        self.app = app
        self.token = token.encode()
        self.cookie = cookie_name(port)
        self.hosts = frozenset(h.lower() for h in hosts) | LOOPBACK_NAMES

    def _matches(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, text = refusal
            await PlainTextResponse(text + "\n", status_code=status)(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        pairs = parse_qsl(query, keep_blank_values=True)
        if scope["method"] == "GET" and any(k == "token" for k, _ in pairs):
            # First visit: keep the token in a cookie and take it out of the address bar
            # (and so out of the browser's history and of any Referer).
            rest = urlencode([(k, v) for k, v in pairs if k != "token"])
            target = scope.get("path", "/") + (f"?{rest}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(self.cookie, self.token.decode(), httponly=True,
                                samesite="strict", path="/")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, _with_safety_headers(send))

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            return 403, (f"this gallery is not served as {host or '(no Host header)'!r}: open "
                         "it through the address `wan-tui serve` printed (or add the name with "
                         "--allow-host)")
        query_token = next((v for k, v in parse_qsl(
            scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            if k == "token"), None)
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is the same as none
            cookie = SimpleCookie()
        from_cookie = cookie[self.cookie].value if self.cookie in cookie else None
        if scope["method"] not in ("GET", "HEAD", "POST"):
            return 405, f"{scope['method']} is not served here"
        if scope["method"] == "POST":
            origin = headers.get("origin")
            if origin is None or origin.lower() != f"http://{host.lower()}":
                return 403, ("a change must come from the gallery's own page (the Origin "
                             "header is missing or names another site)")
            if not self._matches(headers.get(TOKEN_HEADER)):
                return 403, f"a change must carry the token in the {TOKEN_HEADER} header"
            return None
        if self._matches(query_token) or self._matches(from_cookie):
            return None
        if query_token is not None or from_cookie is not None:
            return 403, "wrong token: open the address `wan-tui serve` printed"
        return 401, ("this gallery needs its token: open the address `wan-tui serve` printed "
                     "(it ends in ?token=...)")
