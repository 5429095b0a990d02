"""A loopback HTTP/1.1 server that misbehaves on purpose, one scripted answer at a time.

The simulator speaks the APIs correctly; this one writes raw bytes so a test can send what no
well-behaved server would: redirect loops, a body that crawls, headers of any size, a body
longer than its Content-Length. Every request it reads is recorded in `seen`, and every
connection it accepts is counted in `connections`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def answer(status: int, body: bytes | str = b"", *, ctype: str = "application/json",
           headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    """A raw HTTP/1.1 answer. `length` overrides Content-Length (lie about the body)."""
    if isinstance(body, str):
        body = body.encode()
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {ctype}",
             f"Content-Length: {len(body) if length is None else length}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def redirect(status: int, location: str) -> bytes:
    return answer(status, b"", headers={"Location": location})


# A handler gets the request and the writer; it writes whatever it likes.
Handler = Callable[[Seen, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class HostileServer:
    handler: Handler
    host: str = "127.0.0.1"
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0  # accepted: how many the client opened (keep-alive reuses them)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task] = field(default_factory=set)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/api/v1") -> str:
        return f"{self.base}{path}"

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method)
                and (path is None or s.path.split("?")[0] == path)]

    async def start(self) -> HostileServer:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while True:  # keep-alive: one connection may carry several requests
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                seen = Seen(method, path, headers, body)
                self.seen.append(seen)
                await self.handler(seen, writer)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


async def crawl(writer: asyncio.StreamWriter, head: bytes, body: bytes, gap_s: float) -> None:
    """Send `head`, then the body one byte per `gap_s` (a server that crawls)."""
    writer.write(head)
    await writer.drain()
    for byte in body:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(gap_s)
