"""Reading a batch file: JSON Lines, one request object per line, all checked up front.

A line may also be a sweep: `"sweep": {"resolution": ["720p", "1080p"], "animal": ["fox",
"owl"]}` expands to one request per combination (the product of its lists, in the order
written). A sweep name that is a request field sets that field; any other name is a
template variable, written `{animal}` in the prompt or negative prompt; a name that is
neither is a provider option. Only the `sweep` object expands: a list anywhere else stays
the value it always was (AceData's `reference_video_urls` is a list), so no line changes
meaning because it holds one. A line may expand to at most MAX_PER_LINE requests.

Whatever the file holds -- gigabytes, one endless line, arrays nested a million deep, a
FIFO, /dev/zero, text that is not UTF-8 -- reading it ends in a list of requests or in one
`line N: field: reason`, with bounded memory and time, before anything is spent.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import stat
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, BinaryIO

from tui.errors import EXIT_USAGE, WanError
from tui.images import image_argument
from tui.jobs import JobRequest, ValidationError

# A line may carry an image inline as a data: URL: 20 MB of image is ~27 MB of base64.
MAX_LINE_BYTES = 28 * 1024 * 1024
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_REQUESTS = 10_000  # more than a day of any provider's queue limit
MAX_DEPTH = 10  # {"options": {"x": [...]}}: a request needs three levels
# One line's sweep expands to at most this many requests: a typo in a list (or one list too
# many) should be refused before pricing, not turn into a thousand paid jobs.
MAX_PER_LINE = 100
SWEEP = "sweep"
STDIN = "-"
# Fields a sweep value may also fill into the prompt as {name}: the texts a template is for.
TEMPLATE_FIELDS = ("prompt", "negative_prompt")
_REQUEST_FIELDS = frozenset(f.name for f in fields(JobRequest))


class BatchError(WanError, ValueError):
    """`line N: reason` -- nothing from the file is submitted."""

    exit_status = EXIT_USAGE


@dataclass(frozen=True)
class BatchLine:
    line: int
    request: JobRequest
    # A sweep's choice for this request, as `resolution=720p animal=fox` ("" for a plain line)
    variant: str = ""


# Strings are skipped whole, so brackets inside a prompt do not count as nesting.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def nesting_depth(text: str, stop_above: int = MAX_DEPTH) -> int:
    """How deep a JSON text nests arrays and objects, without building it (json.loads
    recurses once per level and a deep enough line would raise RecursionError). Counting
    stops once past `stop_above`: the line is refused either way."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > stop_above:
                return deepest
        elif token in "]}":
            depth -= 1
    return deepest


def _load_object(number: int, text: str) -> dict[str, Any]:
    if len(text) > MAX_LINE_BYTES:
        raise BatchError(f"line {number}: longer than {MAX_LINE_BYTES // 2**20} MB")
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise BatchError(f"line {number}: nested more than {MAX_DEPTH} levels deep; "
                         "a request needs 3")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BatchError(f"line {number}: not valid JSON ({err.msg}, column {err.colno})"
                         ) from None
    except (ValueError, RecursionError) as err:  # e.g. an integer of more than 4300 digits
        raise BatchError(f"line {number}: not usable JSON ({str(err)[:80]})") from None
    if not isinstance(data, dict):
        raise BatchError(f"line {number}: expected a JSON object with model, prompt, ...")
    return data


def _request(number: int, data: dict[str, Any], variant: str = "") -> JobRequest:
    try:
        request = JobRequest.from_dict(data)
        if request.image_url:
            request = replace(request, image_url=image_argument(request.image_url))
    except ValidationError as err:
        where = f" (sweep {variant})" if variant else ""
        raise BatchError(f"line {number}: {err}{where}") from None
    return request


def parse_line(number: int, text: str) -> JobRequest:
    """One non-blank, non-comment line without a sweep, or BatchError naming the line and
    the field."""
    data = _load_object(number, text)
    if SWEEP in data:
        raise BatchError(f"line {number}: {SWEEP}: this line is a sweep; expand it "
                         "with expand_line")
    return _request(number, data)


def _sweep_lists(number: int, sweep: object, limit: int) -> list[tuple[str, list[Any]]]:
    """The sweep's (name, values) pairs, checked, with the product within `limit`."""
    if not isinstance(sweep, dict) or not sweep:
        raise BatchError(f'line {number}: {SWEEP}: must be an object of lists, such as '
                         '{"resolution": ["720p", "1080p"]}')
    pairs: list[tuple[str, list[Any]]] = []
    for name, values in sweep.items():
        if name in (SWEEP, "options"):
            raise BatchError(f"line {number}: {SWEEP}: {name} cannot be swept; "
                             "sweep the option by its own name")
        if not isinstance(values, list) or not values:
            raise BatchError(f"line {number}: {SWEEP}: {name}: must be a list of at least "
                             f'one value, such as ["720p", "1080p"]')
        pairs.append((name, values))
    count = math.prod(len(values) for _, values in pairs)
    if count > limit:
        sizes = " x ".join(f"{len(values)} {name}" for name, values in pairs)
        raise BatchError(f"line {number}: {SWEEP}: expands to {count} requests ({sizes}); "
                         f"a line may expand to at most {limit}: split it into lines")
    return pairs


def _fill(template: str, name: str, value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return template.replace("{" + name + "}", text)


def _shown(value: object) -> str:
    # Text as written unless it holds a line break or another control character, which
    # would split the one-line error it goes into: that is shown quoted and escaped.
    text = value if isinstance(value, str) and value.isprintable() else json.dumps(value)
    return text if len(text) <= 30 else text[:29] + "…"


def expand_line(number: int, text: str, limit: int = MAX_PER_LINE) -> list[BatchLine]:
    """One line as the requests it stands for: itself, or every combination of its sweep."""
    data = _load_object(number, text)
    if SWEEP not in data:
        return [BatchLine(number, _request(number, data))]
    pairs = _sweep_lists(number, data.pop(SWEEP), limit)
    templates = [f for f in TEMPLATE_FIELDS if isinstance(data.get(f), str)]
    out: list[BatchLine] = []
    names = [name for name, _ in pairs]
    used = {name for name in names  # template variables: written as {name} in a template
            if any("{" + name + "}" in data[field_name] for field_name in templates)}
    for combo in itertools.product(*(values for _, values in pairs)):
        item = dict(data)
        chosen = list(zip(names, combo, strict=True))
        for name, value in chosen:
            if name in _REQUEST_FIELDS or name not in used:
                item[name] = value  # a field, or a provider option checked as one
        # Filled after the fields are set, so a swept template field (a list of prompts)
        # gets the other names filled in too, whatever the sweep's order; a value that is
        # not text (null) is left for the request's validation to refuse.
        for field_name in templates:
            for name, value in chosen:
                if isinstance(item[field_name], str):
                    item[field_name] = _fill(item[field_name], name, value)
        variant = " ".join(f"{name}={_shown(value)}" for name, value in chosen)
        out.append(BatchLine(number, _request(number, item, variant), variant))
    return out


def swept_from(sources: int, count: int) -> str:
    """` from 2 lines (sweeps expanded)` when sweeps made more requests than lines, else ""."""
    if sources == count:
        return ""
    return f" from {sources} line{'s' if sources > 1 else ''} (sweeps expanded)"


def parse_batch(text: str) -> list[BatchLine]:
    """Parse every line (blank lines and `#` comments skipped); the first bad one raises."""
    out: list[BatchLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(out) >= MAX_REQUESTS:
            raise BatchError(f"line {number}: more than {MAX_REQUESTS} requests in one batch; "
                             "split the file")
        out.extend(expand_line(number, stripped))
        if len(out) > MAX_REQUESTS:
            raise BatchError(f"line {number}: more than {MAX_REQUESTS} requests in one batch "
                             "once sweeps are expanded; split the file")
    if not out:
        raise BatchError("the batch file has no requests (one JSON object per line)")
    return out


def _read_bounded(fh: BinaryIO, name: str) -> bytes:
    data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise BatchError(f"{name}: larger than {MAX_FILE_BYTES // 2**20} MB; split the batch")
    return data


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")  # a BOM from a Windows editor is not an error
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise BatchError(f"{name}: line {line}: not UTF-8 text (byte {err.start})") from None


def read_stdin() -> bytes:
    """`batch -`: the user asked for standard input, so a pipe or a terminal is fine (a
    FIFO that never writes waits, as `cat` would); its size is still bounded."""
    stream = sys.stdin
    if stream is None or stream.closed:
        raise BatchError("standard input is closed: give the batch as a file")
    try:
        return _read_bounded(stream.buffer, "standard input")
    except (OSError, ValueError) as err:
        raise BatchError(f"standard input: cannot read ({err})") from None


def read_file(path: Path) -> bytes:
    """A regular file only: a FIFO would block, /dev/zero would never end, a directory is
    a mistake. O_NONBLOCK keeps even the open of a FIFO from waiting for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise BatchError(f"{path}: no such file") from None
    except (OSError, ValueError) as err:
        raise BatchError(f"{path}: cannot read ({getattr(err, 'strerror', None) or err})"
                         ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode)
                    else "a device or socket")
            raise BatchError(f"{path}: is {kind}, not a file; to read a stream on purpose, "
                             f"use `wan-tui batch - < {path}`")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return _read_bounded(fh, str(path))
    except OSError as err:
        raise BatchError(f"{path}: cannot read ({err.strerror or err})") from None
    finally:
        os.close(fd)


def read_batch(path: Path | str) -> list[BatchLine]:
    """The batch at `path` (`-` is standard input), every line checked."""
    if str(path) == STDIN:
        return parse_batch(_decode(read_stdin(), "standard input"))
    path = Path(path)
    return parse_batch(_decode(read_file(path), str(path)))
