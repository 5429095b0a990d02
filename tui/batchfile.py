"""Reading a batch file: JSON Lines, one request object per line, all checked up front."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from tui.errors import EXIT_USAGE, WanError
from tui.images import image_argument
from tui.jobs import JobRequest, ValidationError


class BatchError(WanError, ValueError):
    """`line N: reason` -- nothing from the file is submitted."""

    exit_status = EXIT_USAGE


@dataclass(frozen=True)
class BatchLine:
    line: int
    request: JobRequest


def parse_batch(text: str) -> list[BatchLine]:
    """Parse every line (blank lines and `#` comments skipped); the first bad one raises."""
    out: list[BatchLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise BatchError(f"line {number}: not valid JSON ({err.msg})") from None
        if not isinstance(data, dict):
            raise BatchError(f"line {number}: expected a JSON object with model, prompt, ...")
        try:
            request = JobRequest.from_dict(data)
            if request.image_url:
                request = replace(request, image_url=image_argument(request.image_url))
        except ValidationError as err:
            raise BatchError(f"line {number}: {err}") from None
        out.append(BatchLine(number, request))
    if not out:
        raise BatchError("the batch file has no requests (one JSON object per line)")
    return out


def read_batch(path: Path) -> list[BatchLine]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BatchError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise BatchError(f"{path}: cannot read ({err})") from None
    return parse_batch(text)
