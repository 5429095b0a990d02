"""The simulator server: routes requests to the simulated providers, plus the CLI entry.

Routing by first path segment:

    /venice/...      tui.sim.venice.API        (base URL: /venice/api/v1)
    /apixo/...       tui.sim.apixo.API         if that module exists (base: /apixo/api/v1)
    /acedata/...     tui.sim.acedata.API       if that module exists (base: /acedata)
    /files/<token>.mp4   a finished clip by token, no auth (download URLs of every provider)
    /_sim/stats      SimServer.stats() as JSON (benchmarks and tests in other processes)

Provider-module contract: a module `tui.sim.<name>` exposes

    class API:
        def __init__(self, state: SimState, server_base: Callable[[], str]): ...
        async def handle(self, req: Request, subpath: str) -> Response: ...

`subpath` is the path after the provider segment ("/api/v1/video/queue" for
"/venice/api/v1/video/queue"); `server_base()` gives "http://127.0.0.1:PORT" for URLs the
provider hands out (use `state.file_url(server_base(), job)`). The server counts every
answer per (provider, subpath, status) and adds `Faults.slow_s` to each; everything else
(auth, rate gates, fault draws, body format) is the module's, built from the helpers in
state.py and http.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, Protocol

from tui.sim.http import HttpServer, Request, Response, json_response
from tui.sim.state import Faults, SimConfig, SimState
from tui.sim.tls import NoTls, server_context

PROVIDERS = ("venice", "apixo", "acedata")
MOUNTS = {"venice": "/venice/api/v1", "apixo": "/apixo/api/v1", "acedata": "/acedata"}


class ProviderAPI(Protocol):
    async def handle(self, req: Request, subpath: str) -> Response: ...


def load_apis(state: SimState, server_base: Callable[[], str]) -> dict[str, ProviderAPI]:
    """One API object per simulated provider module that exists."""
    apis: dict[str, ProviderAPI] = {}
    for name in PROVIDERS:
        try:
            module = importlib.import_module(f"tui.sim.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"tui.sim.{name}":
                raise  # the module exists but is broken: say so, do not hide it
            continue
        apis[name] = module.API(state, server_base)
    return apis


class SimServer:
    def __init__(
        self,
        config: SimConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float] | None = None,
        rate_clock: Callable[[], float] | None = None,
    ) -> None:
        self.state = SimState(config, clock=clock, rate_clock=rate_clock)
        self.host = host
        tls = None
        self.ca_file: Path | None = None  # the CA a client trusts (SSL_CERT_FILE) for HTTPS
        if self.state.config.tls:
            try:
                tls, self.ca_file = server_context(self.state.data_dir)
            except BaseException:
                self.state.close()
                raise
        self._http = HttpServer(self._dispatch, host, port, tls=tls,
                                rtt_s=self.state.config.rtt_s)
        self.apis = load_apis(self.state, lambda: self.base)

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ca_file is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    def url(self, provider: str) -> str:
        return self.base + MOUNTS[provider]

    async def start(self) -> None:
        try:
            await self._http.start()
        except BaseException:
            self.state.close()  # no stop() will follow a failed start: drop the temp dir now
            raise

    def stats(self) -> dict[str, Any]:
        """The state's counters and the connections and TLS handshakes clients made."""
        return {**self.state.stats(), "connections": self._http.connections,
                "tls_handshakes": self._http.handshakes}

    async def stop(self) -> None:
        await self._http.stop()
        await self.state.drain()
        self.state.close()

    # ------------------------------------------------------------ routing

    async def _dispatch(self, req: Request) -> Response:
        _, _, rest = req.path.partition("/")
        first, _, tail = rest.partition("/")
        if first == "_sim":
            if req.path == "/_sim/stats":
                return json_response(200, self.stats())
            return json_response(404, {"error": f"no such simulator route: {req.path}"})
        if self.state.config.record_senders and req.peer_port is not None:
            from tui.sim.senders import sender_pid  # slow: only when asked

            self.state.record_sender(sender_pid(req.peer_port, self.port), time.time())
        if first == "files":
            resp = await self._file(req, tail)
            counted = ("files", "/files")
        elif first in self.apis:
            subpath = "/" + tail
            resp = await self.apis[first].handle(req, subpath)
            counted = (first, subpath)
        else:
            resp = json_response(404, {"error": f"no such route: {req.path}"})
            counted = ("sim", "unknown")
        self.state.count(*counted, resp.status)
        resp.delay_s += self.state.faults.slow_s
        return resp

    async def _file(self, req: Request, name: str) -> Response:
        if req.method != "GET":
            return json_response(405, {"error": "Method not allowed"})
        token = name.removesuffix(".mp4")
        job = self.state.by_token.get(token)
        if job is None or not self.state.media_available(job):
            return json_response(404, {"error": "File not found or expired"})
        return await self.state.clip_response(job)

    # ------------------------------------------------------------ thread mode

    @classmethod
    @contextlib.contextmanager
    def running(
        cls, config: SimConfig | None = None, port: int = 0, **kwargs: Any
    ) -> Iterator[SimServer]:
        """Run a server on its own event loop in a daemon thread while the block runs."""
        server = cls(config, port=port, **kwargs)
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(server.start())
            except BaseException as err:  # reported to the caller below
                failure.append(err)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

        thread = threading.Thread(target=main, name="wan-tui-sim", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            loop.close()
            raise failure[0]
        # From here the thread owns the loop and closes it when run_forever returns.
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)


# ---------------------------------------------------------------- CLI


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the caller sees what to fix at a glance.
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(text: str, cast: Callable[[str], Any] = float) -> Any:
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _rate(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def _positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _port(text: str) -> int:
    value = _number(text, int)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number")
    return value


def build_parser(prog: str = "wan-tui sim") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="Run the loopback simulator of the video APIs.")
    p.add_argument("--port", type=_port, default=8765, help="port (0: any free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    p.add_argument("--mean", type=_non_negative, default=120.0, help="mean job run time, s")
    p.add_argument("--spread", type=_rate, default=0.25, help="run time spread (0..1)")
    p.add_argument("--seed", type=lambda t: _number(t, int), default=None, help="RNG seed")
    p.add_argument("--balance", type=_non_negative, default=1000.0, help="account USD")
    p.add_argument("--video-seconds", type=_positive, default=2.0, help="clip length, s")
    p.add_argument("--data-dir", type=Path, default=None, help="where clips are written")
    p.add_argument("--fault-429", type=_rate, default=0.0, help="fraction answered 429")
    p.add_argument("--fault-500", type=_rate, default=0.0, help="fraction of polls 500")
    p.add_argument("--fault-503", type=_rate, default=0.0, help="fraction of polls 503")
    p.add_argument("--fault-404", type=_rate, default=0.0, help="fraction of jobs expired")
    p.add_argument("--fault-cut", type=_rate, default=0.0, help="fraction of downloads cut")
    p.add_argument("--fault-ambiguous", type=_rate, default=0.0, help="queue 500 but charged")
    p.add_argument("--slow", type=_non_negative, default=0.0, help="extra latency, s")
    p.add_argument("--retrieve-limit", type=_positive_int, default=120, help="per key/min")
    p.add_argument("--queue-limit", type=_positive_int, default=40, help="per key/min")
    p.add_argument("--tls", action="store_true",
                   help="serve HTTPS (clients trust it with SSL_CERT_FILE; needs trustme)")
    p.add_argument("--rtt", type=_non_negative, default=0.0,
                   help="round-trip time to add, ms (per connection and per request)")
    return p


def config_from_args(args: argparse.Namespace) -> SimConfig:
    faults = Faults(
        rate_429=args.fault_429,
        rate_500=args.fault_500,
        rate_503=args.fault_503,
        rate_404=args.fault_404,
        cut_rate=args.fault_cut,
        slow_s=args.slow,
        queue_ambiguous=args.fault_ambiguous,
        retrieve_limit_per_min=args.retrieve_limit,
        queue_limit_per_min=args.queue_limit,
    )
    return SimConfig(
        mean_s=args.mean,
        spread=args.spread,
        seed=args.seed,
        balance_usd=args.balance,
        video_seconds=args.video_seconds,
        faults=faults,
        data_dir=args.data_dir,
        tls=args.tls,
        rtt_s=args.rtt / 1000,
    )


def banner(server: SimServer) -> list[str]:
    keys = server.state.config.api_keys
    lines = [
        f"{name:<8} {server.url(name)}  key: {keys.get(name, '')}"
        for name in PROVIDERS
        if name in server.apis
    ]
    lines.append(f"{'stats':<8} {server.base}/_sim/stats")
    if server.ca_file is not None:
        lines.append(f"{'trust':<8} export SSL_CERT_FILE={server.ca_file}")
    return lines


async def _serve_forever(server: SimServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        for line in banner(server):
            print(line, flush=True)
        print("simulator running; Ctrl-C stops it", flush=True)
        await stop.wait()
    finally:
        await server.stop()


def run_cli(argv: Sequence[str] | None = None, prog: str = "wan-tui sim") -> int:
    """`wan-tui sim ...`: run the simulator in the foreground until Ctrl-C. Returns the code."""
    args = build_parser(prog).parse_args(argv)
    try:
        server = SimServer(config_from_args(args), host=args.host, port=args.port)
    except NoTls as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve_forever(server))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown, or no signal handlers
        return 0
    except OSError as err:
        # asyncio wraps bind errors in a long sentence; the errno's text is what matters.
        reason = os.strerror(err.errno) if err.errno and err.errno > 0 else err.strerror or err
        print(f"{prog}: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    return 0
