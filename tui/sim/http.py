"""A small HTTP/1.1 server on asyncio streams and the h11 sans-IO state machine.

Enough HTTP for the simulator: keep-alive, Content-Length on every answer, file bodies
streamed in 64 KiB chunks, and two faults real networks produce -- a slow answer and a
body cut off mid-way (headers promise the full length, the socket closes early).
A handler that raises gets a 500 JSON answer; the server itself never dies of it.

Distance: with TLS (an `ssl.SSLContext`) and a round-trip time, a new connection costs what
it costs far away -- one round trip for TCP's handshake and one more for TLS 1.3's -- and
each request one round trip. Those delays are added by the server (the client's loopback
connect and handshake are instant), before the first answer on a connection and before each
answer. `connections` and `handshakes` count what clients opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import h11

log = logging.getLogger("tui.sim")

CHUNK = 64 * 1024
MAX_BODY = 64 * 1024 * 1024  # hard cap; providers refuse smaller bodies themselves (Venice: 35 MB)
READ_SIZE = 64 * 1024


class BadJSON(ValueError):
    """The request body is not the JSON a handler asked for."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    peer_port: int | None = None  # the client's TCP port (tui/sim/senders.py)

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BadJSON(f"body is not valid JSON: {err}") from None

    def bearer(self) -> str | None:
        """The token of an `Authorization: Bearer ...` header, or None."""
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: Path | None = None  # stream this file as the body instead
    cut_at: int | None = None  # fault: promise the full length, send this many bytes, close
    delay_s: float = 0.0  # fault: sleep before answering
    # Runs once the body went out (whole or cut): "delete after sending" semantics.
    after_send: Callable[[], None] | None = None


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    out = {"content-type": "application/json"}
    out.update(headers or {})
    return Response(status, out, json.dumps(obj).encode())


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves `handler` on host:port (port 0 picks a free one; see `.port` after start)."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0, *,
                 tls: ssl.SSLContext | None = None, rtt_s: float = 0.0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.tls = tls
        self.rtt_s = rtt_s
        self.connections = 0  # accepted (TLS ones after their handshake)
        self.handshakes = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        # Python 3.11's Server.close leaves accepted connections open: cancel them ourselves,
        # or a keep-alive client would hold the server (and its test) open.
        for task in list(self._conns):
            task.cancel()
        if self._conns:
            await asyncio.gather(*self._conns, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    # ------------------------------------------------------------ one connection

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self.connections += 1
        if self.tls is not None:
            self.handshakes += 1
        conn = h11.Connection(h11.SERVER)
        try:
            # TCP's handshake, and TLS's, each a round trip away
            await self._distance(2 if self.tls is not None else 1)
            while await self._one_exchange(conn, reader, writer):
                conn.start_next_cycle()
        except (ConnectionError, asyncio.IncompleteReadError, h11.ProtocolError) as err:
            log.debug("connection dropped: %s", err)
        except asyncio.CancelledError:
            pass  # stop() cancels connections; ending normally keeps asyncio from logging it
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _one_exchange(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Read one request, answer it; True when the connection may carry another."""
        try:
            request = await self._read_request(conn, reader)
        except _BodyTooLarge:
            too_big = {"error": "Request body too large", "code": "PAYLOAD_TOO_LARGE"}
            await self._send(conn, writer, json_response(413, too_big), close=True)
            return False
        except h11.RemoteProtocolError as err:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                bad = json_response(err.error_status_hint, {"error": f"bad request: {err}"})
                await self._send(conn, writer, bad, close=True)
            return False
        if request is None:
            return False
        peer = writer.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            request.peer_port = int(peer[1])
        response = await self._call_handler(request)
        delay_s = response.delay_s + self.rtt_s  # the request's way here and the answer's back
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        whole = await self._send(conn, writer, response)
        return whole and conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _distance(self, round_trips: int) -> None:
        if self.rtt_s > 0:
            await asyncio.sleep(self.rtt_s * round_trips)

    async def _call_handler(self, request: Request) -> Response:
        try:
            return await self.handler(request)
        except Exception as err:  # a simulator bug must not kill the server
            log.exception("simulator handler failed on %s %s", request.method, request.path)
            return json_response(500, {"error": f"simulator bug: {type(err).__name__}: {err}"})

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(READ_SIZE))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise _BodyTooLarge
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return _make_request(head, bytes(body))
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        response: Response,
        close: bool = False,
    ) -> bool:
        """Write the answer; False when the body was cut (the connection must then close)."""
        fh = None
        if response.file is not None:
            try:
                fh = response.file.open("rb")
            except OSError:
                response = json_response(404, {"error": "Media not found"})
        try:
            size = os.fstat(fh.fileno()).st_size if fh else len(response.body)
            await self._send_head(conn, writer, response, size, close)
            if fh is not None:
                whole = await self._send_file(conn, writer, fh, size, response.cut_at)
            else:
                whole = await self._send_bytes(conn, writer, response.body, response.cut_at)
            if whole:
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
            return whole
        finally:
            if fh is not None:
                fh.close()
            if response.after_send is not None:
                _run_after_send(response.after_send)

    async def _send_head(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        response: Response,
        size: int,
        close: bool,
    ) -> None:
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        headers.append(("content-length", str(size)))
        if close:
            headers.append(("connection", "close"))
        reason = _reason(response.status)
        event = h11.Response(status_code=response.status, headers=headers, reason=reason)
        writer.write(conn.send(event))

    async def _send_bytes(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, body: bytes, cut_at: int | None
    ) -> bool:
        data = body if cut_at is None else body[:cut_at]
        if data:
            writer.write(conn.send(h11.Data(data=data)))
        await writer.drain()
        return cut_at is None or cut_at >= len(body)

    async def _send_file(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        fh: Any,
        size: int,
        cut_at: int | None,
    ) -> bool:
        left = size if cut_at is None else min(cut_at, size)
        while left > 0:
            # Small local files: a blocking 64 KiB read is cheaper than a thread hop.
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            writer.write(conn.send(h11.Data(data=chunk)))
            await writer.drain()
        return cut_at is None or cut_at >= size


class _BodyTooLarge(Exception):
    pass


def _run_after_send(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:
        log.exception("after-send callback failed")


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _make_request(head: h11.Request, body: bytes) -> Request:
    target = head.target.decode("latin-1")
    parts = urlsplit(target)
    headers: dict[str, str] = {}
    for name, value in head.headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return Request(
        method=head.method.decode("ascii").upper(),
        path=unquote(parts.path) or "/",
        query=dict(parse_qsl(parts.query, keep_blank_values=True)),
        headers=headers,
        body=body,
    )
