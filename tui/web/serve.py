"""`wan-tui serve`: run the gallery in this process until ctrl-c.

Its own process, beside the engine (which may be a dashboard, `watch` or a background one):
it only reads the history and writes picks, so it never holds the engine's lock and never
shares an event loop with a dashboard's keys.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import ipaddress
import socket
import sys
from typing import TYPE_CHECKING

from tui.errors import EXIT_OK, Failure, UsageError

if TYPE_CHECKING:
    from tui.store import Store

DEFAULT_PORT = 8790


def add_parser(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="a web gallery of finished jobs (local, token-protected)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"TCP port (default {DEFAULT_PORT}; 0: any free port)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; "
                            "reach it from a laptop with the printed ssh -L line)")
    serve.add_argument("--expose", action="store_true",
                       help="allow an address other machines can reach (e.g. --host 0.0.0.0)")
    serve.add_argument("--allow-host", action="append", metavar="NAME",
                       help="another name the browser may use for this server (repeatable)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: give a port from 1 to 65535 (0: any free port)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} is in use (another gallery?): choose one with "
                             "--port N, or --port 0 for any free port") from None
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def cmd_serve(args: argparse.Namespace, config) -> int:
    import uvicorn

    from tui.web.guard import new_token
    from tui.web.server import make_app

    if not _is_loopback(args.host) and not args.expose:
        raise UsageError(f"--host {args.host} lets other machines reach the gallery (the token "
                         "still guards it, but it travels unencrypted): add --expose if you "
                         "mean it, or keep 127.0.0.1 and use ssh -L")
    if config.database is None and not config.db_path.exists():
        raise UsageError(f"there is no history at {config.db_path} yet: run some jobs first")
    sock = _listen(args.host, args.port)
    port = sock.getsockname()[1]
    token = new_token()
    shown = args.host if _is_loopback(args.host) else socket.gethostname()
    hosts = (*(args.allow_host or ()), *(() if _is_loopback(args.host) else
                                 (args.host, socket.gethostname(), socket.getfqdn())))
    stopping = asyncio.Event()
    if not _is_loopback(args.host):
        print(f"warning: the gallery listens on {args.host}:{port}, reachable from other "
              "machines; anyone who sees the address below can watch and pick", file=sys.stderr)
    url_host = f"[{shown}]" if ":" in shown else shown

    async def serve() -> None:
        from tui.store import open_store

        # Opened here, before anything listens: a history that cannot be opened (or needs
        # a newer wan-tui) is one line, not a server that fails to start.
        store = await open_store(config.history)
        try:
            await run(store)
        finally:
            await store.close()

    async def run(store: Store) -> None:
        app = make_app(store, token=token, port=port, allowed_hosts=hosts,
                       thumbs_dir=config.db_path.parent / "thumbs", stopping=stopping)
        server = uvicorn.Server(uvicorn.Config(
            # log_config=None: uvicorn's messages go to wan-tui's log file, never a traceback
            # on the terminal; no access log (the first request's URL carries the token)
            app, log_config=None, access_log=False, timeout_graceful_shutdown=2,
            lifespan="on", proxy_headers=False))
        running = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not running.done():
            await asyncio.sleep(0.02)
        if server.started:
            # Only now: the address works the moment it is shown, and ctrl-c is uvicorn's.
            print(f"wan-tui gallery: http://{url_host}:{port}/?token={token}")
            print(f"from a laptop:   ssh -N -L {port}:127.0.0.1:{port} {socket.gethostname()}"
                  "   then open the address above there (ctrl-c here stops it)", flush=True)
        while not running.done():
            if server.should_exit:  # ctrl-c: end the pages' event streams, so it can stop
                stopping.set()
            await asyncio.sleep(0.05)
        await running
        if not server.started:
            raise Failure("the gallery could not start: the log file says why "
                          "(`wan-tui config` prints where it is)")

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the ctrl-c it already answered by shutting down
    finally:
        sock.close()
    print("gallery stopped", file=sys.stderr)
    return EXIT_OK
