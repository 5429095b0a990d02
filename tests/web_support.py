"""What the web gallery's tests share: a history of finished jobs made by the real CLI
against the simulator, and `wan-tui serve` as a real process on a loopback port."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conftest import T2V

URL_LINE = re.compile(r"^wan-tui gallery: (http://([^/]+):(\d+)/\?token=(\S+))$")


def wan(env: dict[str, str], *args: str, stdin: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def run_batch(env: dict[str, str], prompts: list[str], **fields: object) -> None:
    """Submit one batch of `prompts` and follow it until every job is done."""
    lines = [json.dumps({"model": T2V, "prompt": p, "duration": "5s", **fields})
             for p in prompts]
    done = wan(env, "batch", "-", "--yes", "--quiet", "--follow", stdin="\n".join(lines))
    assert done.returncode == 0, done.stderr
    assert f"{len(prompts)} done, 0 not done" in done.stdout, done.stdout


def listed(env: dict[str, str], *args: str) -> list[dict]:
    out = wan(env, "list", "--json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@dataclass
class Served:
    url: str  # with the token, as printed
    base: str  # http://127.0.0.1:PORT
    host: str
    port: int
    token: str
    process: subprocess.Popen
    printed: list[str]

    @property
    def cookie(self) -> str:
        return f"wan_tui_token_{self.port}"


@contextmanager
def serving(env: dict[str, str], *args: str) -> Iterator[Served]:
    """`wan-tui serve --port 0` until the block ends; then ctrl-c, and it must exit 0."""
    process = subprocess.Popen([sys.executable, "-m", "tui.cli", "serve", "--port", "0", *args],
                               env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    printed: list[str] = []
    first = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            printed.append(line.rstrip("\n"))
            if len(printed) >= 2:
                first.set()
        first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert first.wait(30), "wan-tui serve printed nothing in 30 s"
        match = URL_LINE.match(printed[0]) if printed else None
        assert match, (printed, process.stderr.read() if process.poll() is not None else "")
        url, host, port, token = match.groups()
        yield Served(url, f"http://{host}:{port}", host, int(port), token, process, printed)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
                raise AssertionError("wan-tui serve did not stop on ctrl-c") from None
        reader.join(5)
        assert process.stderr is not None
        errors = process.stderr.read()
        process.stderr.close()
        process.stdout.close()  # type: ignore[union-attr]
        assert process.returncode == 0, errors
        assert "Traceback" not in errors, errors


def history_path(home: Path) -> Path:
    return home / "history.db"
