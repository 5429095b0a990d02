"""The log file a user can attach to a bug report.

One rotating file (`Config.log_file`: WAN_TUI_HOME/logs or the platform log folder), set up
once per process by `setup_logging`, which the CLI calls before any command (the dashboard
included: it must never write a log line over its own screen). Every line passes through
redaction first: configured API keys and anything shaped like a bearer token or an
`api_key=` value become `[redacted]`, so the file is safe to share.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
from collections.abc import Iterable
from pathlib import Path

from tui.config import KEY_ENV, Config, ConfigError, default_log_file, load_config

MAX_BYTES = 1_000_000  # a few days of an hour-long batch at INFO
BACKUPS = 3
REDACTED = "[redacted]"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Shapes of secrets whatever their value: `Bearer xyz`, then `api_key=xyz`, `"token": "xyz"`
# (the second skips a value the first already blanked, and the scheme word before it).
_VALUE = r"[^\s\"',;}]+"
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+" + _VALUE)
_KEYVAL = re.compile(r"(?i)\b((?:api[_-]?key|token|authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?)"
                     r"(?!\[redacted\]|bearer\b|basic\b)" + _VALUE)


class RedactingFormatter(logging.Formatter):
    """Formats as usual (tracebacks included), then blanks every secret in the result."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(FORMAT)
        # Longest first, so a key that contains another is blanked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _KEYVAL.sub(lambda m: m.group(1) + REDACTED, text)


class _WanHandler(logging.handlers.RotatingFileHandler):
    """Marks the handler as ours, so a second setup replaces it rather than doubling lines."""

    def handleError(self, record: logging.LogRecord) -> None:
        # A log file that cannot be written (read-only home, full disk) must not print
        # logging's own traceback over the one line the command says about it.
        pass


def setup_logging(config: Config | None = None, *, debug: bool = False) -> Path:
    """Send every log record of this process to the rotating file; return its path.

    Without a config (or with a broken one: the command will say why) the file goes where
    the environment puts it. `debug` logs everything, the libraries' debug lines included.
    """
    if config is None:
        try:
            config = load_config()
        except ConfigError:
            config = None
    path = config.log_file if config is not None else default_log_file()
    secrets = [p.api_key for p in config.providers.values() if p.api_key] if config else []
    secrets += [os.environ.get(var, "") for var in KEY_ENV.values()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # read-only or full: the command says so itself; the log stays quiet
    handler = _WanHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8",
                          delay=True)
    handler.setFormatter(RedactingFormatter(secrets))
    stop_logging()
    root = logging.getLogger()
    root.addHandler(handler)
    # Libraries (httpx, asyncio) at WARNING unless debugging; our own loggers at INFO.
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    for name in ("wan_tui", "tui"):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.INFO)
    return path


def stop_logging() -> None:
    """Close the file `setup_logging` opened (a second setup, or a test's end)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _WanHandler)]:
        root.removeHandler(old)
        old.close()
