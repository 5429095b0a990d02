"""Steps every command that spends takes, shared by cli.py and the command modules beside it
(followcli, varycli): the config, the request checked against the model, the price, and the
question before spending (refused without a terminal to ask on, never assumed yes).
"""

from __future__ import annotations

import sys

from tui.errors import UsageError


def one_line(text: str) -> str:
    """Messages quote what the user typed or a file held; a newline (or a terminal escape)
    in there must not turn one line into two, or into a command to the terminal."""
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


def user_config():
    from tui.config import load_config

    return load_config()  # a ConfigError is a WanError with exit status 2: main says it


def stdin_is_terminal() -> bool:
    # `wan-tui batch FILE <&-` leaves sys.stdin None; a closed or detached one raises.
    stdin = sys.stdin
    try:
        return stdin is not None and not stdin.closed and stdin.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    if not stdin_is_terminal():
        raise UsageError("no terminal to ask on: add --yes to go ahead (nothing was sent "
                         "or spent)")
    try:
        answer = input(f"{question} [y/N] ")
    except (EOFError, OSError, ValueError):
        return False
    return answer.strip().lower() in ("y", "yes")


async def quote_all(session, requests) -> list:
    return [await session.engine.quote(req) for req in requests]


async def validate(session, req, *, check_prompt: bool = True):
    """The request as it will be sent (normalized), or UsageError with the reason."""
    from dataclasses import replace

    from tui.jobs import ValidationError

    provider = session.providers.get(req.provider)
    if provider is not None and not provider.configured:
        raise UsageError(getattr(provider, "not_configured", f"{req.provider}: no API key"))
    try:
        if check_prompt:
            return await session.engine.catalog.prepare(req)
        priced = await session.engine.catalog.prepare(replace(req, prompt="x"))
        return replace(priced, prompt=req.prompt)
    except ValidationError as err:
        raise UsageError(str(err)) from None


async def warn_deprecated(session, requests) -> None:
    """Before anything is paid for: one line on stderr per deprecated model asked for."""
    seen: set[tuple[str, str]] = set()
    for req in requests:
        if (req.provider, req.model) in seen:
            continue
        seen.add((req.provider, req.model))
        caps = await session.engine.catalog.caps(req.provider, req.model)
        if caps.deprecation is not None:
            print(f"wan-tui: warning: {caps.deprecation.warning(req.model)}", file=sys.stderr)
