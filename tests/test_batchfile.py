"""Reading batch files: every crash the fuzzing found is now one `line N: field: reason`."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from tui import batchfile
from tui.batchfile import BatchError, nesting_depth, parse_batch, read_batch

OK = {"model": "m", "prompt": "a fox", "duration": "5s"}


def line(**changes) -> str:
    return json.dumps({**OK, **changes}, allow_nan=True, ensure_ascii=False)


def refused(text: str) -> str:
    with pytest.raises(BatchError) as info:
        parse_batch(text)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("raw", "expect"), [
    (line(duration=5.9), "line 1: duration: 5.9 is not a whole number of seconds"),
    ('{"model": "m", "prompt": "p", "duration": 1e999}', "line 1: duration: inf is not a finite"),
    ('{"model": "m", "prompt": "p", "duration": NaN}', "line 1: duration: nan is not a finite"),
    (line(duration=0), "line 1: duration: must be between 1 and"),
    (line(duration="99999999999999s"), "line 1: duration"),
    (line(duration=True), "line 1: duration: must be a number of seconds"),
    (line(options="abc"), "line 1: options: must be an object"),
    (line(options=5), "line 1: options: must be an object"),
    (line(options=True), "line 1: options: must be an object"),
    (line(options={"shot_type": float("nan")}), "line 1: shot_type: nan is not a finite"),
    (line(seed=1.5), "line 1: seed: 1.5 is not a whole number"),
    (line(seed=2**70), "line 1: seed: must be between"),
    (line(seed="7"), "line 1: seed: must be a whole number, not text"),
    (line(audio="yes"), "line 1: audio: must be true or false"),
    (line(resolution=720), "line 1: resolution: must be text, not a number"),
    (line(prompt="bad \ud800 escape"), "line 1: prompt: contains something that is not valid"),
    (line(prompt="nul \x00 inside"), "line 1: prompt: contains a NUL"),
    (line(model=""), "line 1: model: missing"),
    ('{"model": "m", "prompt": "p", "seed": ' + "9" * 5000 + "}", "line 1: not usable JSON"),
    ("[" * 100_000 + "]" * 100_000, "line 1: nested more than 10 levels deep"),
    (line(options={"x": [[[[[[[[[[[1]]]]]]]]]]]}), "line 1: nested more than 10 levels"),
    ('{"model": "m", "prompt": ', "line 1: not valid JSON"),
    ("[1, 2]", "line 1: expected a JSON object"),
])
def test_each_bad_field_is_one_line_with_line_and_field(raw, expect):
    assert refused(raw).startswith(expect)


def test_the_line_number_counts_blank_and_comment_lines():
    text = "\n".join(["# comment", "", line(), line(duration=5.9)])
    assert refused(text).startswith("line 4: duration:")


def test_whole_numbers_written_as_floats_are_accepted():
    (first, second) = parse_batch("\n".join([line(duration=5.0), line(duration=10, seed=3.0)]))
    assert first.request.duration == "5s"
    assert second.request.duration == "10s" and second.request.seed == 3


def test_brackets_inside_strings_are_not_nesting():
    assert nesting_depth('{"prompt": "[[[[[[[[[[[[[[[[[[[[ \\" ]]]]"}') == 1
    (only,) = parse_batch(line(prompt="[" * 50 + "{" * 50))
    assert only.request.prompt.startswith("[[[")


def test_too_many_requests_and_too_long_a_line(monkeypatch):
    monkeypatch.setattr(batchfile, "MAX_REQUESTS", 3)
    assert refused("\n".join([line()] * 4)).startswith("line 4: more than 3 requests")
    monkeypatch.setattr(batchfile, "MAX_LINE_BYTES", 100)
    assert refused(line(prompt="x" * 200)).startswith("line 1: longer than")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "jobs.fifo"
    os.mkfifo(fifo)
    with pytest.raises(BatchError, match="is a pipe, not a file.*batch - <"):
        read_batch(fifo)


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a device"), ("/", "a directory")])
def test_devices_and_directories_are_refused(path, kind):
    with pytest.raises(BatchError, match=f"is {kind}"):
        read_batch(Path(path))


def test_a_file_too_large_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(batchfile, "MAX_FILE_BYTES", 1000)
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join([line()] * 100))
    with pytest.raises(BatchError, match="larger than"):
        read_batch(big)


def test_text_that_is_not_utf8_names_its_line(tmp_path):
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(line().encode() + b"\n" + line(prompt="caf\xe9").encode("latin-1"))
    with pytest.raises(BatchError, match=r"line 2: not UTF-8"):
        read_batch(bad)


def test_a_windows_bom_is_fine(tmp_path):
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + line().encode())
    assert len(read_batch(bom)) == 1


def test_dash_reads_standard_input_on_purpose(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO((line() + "\n").encode())))
    (only,) = read_batch("-")
    assert only.request.prompt == "a fox"


def test_dash_with_standard_input_closed(monkeypatch):
    monkeypatch.setattr("sys.stdin", None)
    with pytest.raises(BatchError, match="standard input is closed"):
        read_batch("-")


def test_a_missing_image_file_names_the_line(tmp_path):
    text = "\n".join([line(), line(image_url=str(tmp_path / "gone.png"))])
    assert "line 2: image" in refused(text) and "no such file" in refused(text)


def test_an_image_path_that_is_a_device_or_has_a_nul_is_refused():
    assert "not a file" in refused(line(image_url="/dev/zero"))
    assert refused(line(image_url="a\x00b.png")).startswith("line 1: image_url: contains a NUL")
