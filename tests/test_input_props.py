"""Generated input, thousands of shapes: every refusal is one line, nothing else escapes.

Property-based (hypothesis) over the batch parser, request validation and the CLI's
arguments. About 1 000 generated cases in all; `python -m tui.bench.fuzz_inputs` runs
many more against the simulator and counts tracebacks, paid calls and hangs.
"""

from __future__ import annotations

import argparse
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui.batchfile import BatchError, parse_batch, parse_line
from tui.cliparser import build_parser, parse_options, request_from
from tui.clisteps import one_line
from tui.errors import UsageError
from tui.jobs import (
    MAX_DURATION_S,
    SEED_RANGE,
    JobRequest,
    ModelCaps,
    ValidationError,
    validate_request,
)

FAST = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])

CAPS = ModelCaps(provider="venice", id="m", name="M", model_type="text-to-video",
                 durations=("5s", "10s"), resolutions=("720p", "1080p"),
                 aspect_ratios=("16:9",), audio=True, audio_configurable=True,
                 prompt_limit=200, negative_prompt_limit=50, accepts_image=True,
                 options=("shot_type", "size"))

# Text as a hostile file would hold it: control characters, NUL, lone surrogates (what
# "\ud800" in JSON becomes), brackets, quotes.
nasty_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
    st.sampled_from(["", " ", "\x00", "5s", "5.9s", "1e999", "NaN", "[" * 50, "\u202e",
                     "9" * 5000]))
numbers = st.one_of(
    st.integers(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.just(5.9), st.just(5.0),
    st.just(float("nan")), st.just(float("inf")), st.just(1e999), st.just(10**400))
scalars = st.one_of(st.none(), st.booleans(), numbers, nasty_text)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(nasty_text, inner, max_size=4), max_leaves=12)

# A request object where each field is either plausible or anything at all.
FIELDS = {
    "model": st.sampled_from(["m", "", "wan-2.5-preview-text-to-video"]) | json_values,
    "prompt": st.sampled_from(["a fox", "", "  "]) | json_values,
    "duration": st.sampled_from(["5s", "10s", 5, 10, 5.0, 5.9, "0s", -5]) | json_values,
    "resolution": st.sampled_from(["720p", "4k"]) | json_values,
    "aspect_ratio": st.sampled_from(["16:9", "2:1"]) | json_values,
    "negative_prompt": st.sampled_from(["blur"]) | json_values,
    "audio": st.booleans() | json_values,
    "seed": st.integers() | json_values,
    "image_url": st.sampled_from(["https://x/y.png", "/dev/zero", "nope.png"]) | json_values,
    "provider": st.sampled_from(["venice", "acme"]) | json_values,
    "options": st.dictionaries(st.sampled_from(["shot_type", "size", "x y", ""]), json_values,
                               max_size=3) | json_values,
    "shot_type": json_values,
    "__proto__": json_values,
}
requests = st.fixed_dictionaries({}, optional=FIELDS)


def _sendable(req: JobRequest) -> None:
    """What an accepted request must be: storable and sendable as strict JSON."""
    body = json.dumps(req.to_dict(), allow_nan=False)
    body.encode("utf-8")  # no lone surrogate
    assert req.duration.endswith("s") and 1 <= int(req.duration[:-1]) <= MAX_DURATION_S
    if req.seed is not None:
        assert isinstance(req.seed, int) and SEED_RANGE[0] <= req.seed <= SEED_RANGE[1]
    assert isinstance(req.options, dict)
    assert req.audio is None or isinstance(req.audio, bool)


def _one_line(message: str) -> None:
    """As the CLI prints it (it escapes newlines a quoted value may carry): one line."""
    shown = one_line(message)
    assert shown.strip() and "\n" not in shown and "Traceback" not in shown


@FAST
@given(requests)
def test_from_dict_accepts_sound_requests_and_refuses_the_rest_in_one_line(data):
    try:
        req = JobRequest.from_dict(data)
    except ValidationError as err:
        _one_line(str(err))
        if err.field:
            assert str(err).startswith(f"{err.field}: ") or err.field == "options"
        return
    _sendable(req)


@FAST
@given(requests)
def test_validation_against_a_model_never_raises_anything_else(data):
    try:
        req = JobRequest.from_dict({"model": "m", "prompt": "a fox", **data})
        validate_request(req, CAPS)
    except ValidationError as err:
        _one_line(str(err))
        return
    _sendable(req)
    assert req.duration in CAPS.durations and len(req.prompt) <= CAPS.prompt_limit


@FAST
@given(st.one_of(requests.map(lambda d: json.dumps(d, allow_nan=True, ensure_ascii=False)
                              if _dumpable(d) else "{}"),
                 st.text(max_size=200), st.binary(max_size=200).map(
                     lambda b: b.decode("utf-8", "replace"))))
def test_a_batch_line_is_a_request_or_one_line_naming_its_line(text):
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return
    try:
        req = parse_line(7, stripped)
    except BatchError as err:
        _one_line(str(err))
        assert str(err).startswith("line 7: ")
        return
    _sendable(req)


def _dumpable(data) -> bool:
    try:
        json.dumps(data, allow_nan=True, ensure_ascii=False).encode("utf-8")
    except (ValueError, TypeError, OverflowError, UnicodeEncodeError):
        return False
    return True


@settings(deadline=None, max_examples=100)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_duration_number_is_whole_and_finite_or_refused(value):
    line = '{"model": "m", "prompt": "p", "duration": ' + json.dumps(value) + '}'
    try:
        (batch_line,) = parse_batch(line)
    except BatchError as err:
        assert math.isnan(value) or math.isinf(value) or not value.is_integer() or not (
            1 <= value <= MAX_DURATION_S), err
        return
    assert value.is_integer() and batch_line.request.duration == f"{int(value)}s"


FLAGS = ["--model", "--prompt", "--duration", "--resolution", "--aspect-ratio", "--seed",
         "--option", "--negative-prompt", "--max-cost", "--provider", "--audio", "--no-audio",
         "--yes", "--wait", "-o", "-d"]
argv_words = st.lists(st.sampled_from(FLAGS) | nasty_text
                      | st.sampled_from(["5s", "5.9", "nan", "inf", "-1", "1e999", "m",
                                         "k=v", "k=NaN", "k=[[[[[[[[[[[[1]]]]]]]]]]]]",
                                         "=v", "k=", "shot_type=1e999", "venice"]),
                      max_size=12)


@FAST
@given(argv_words)
def test_cli_arguments_become_a_request_or_one_usage_line(words):
    for head, with_prompt in ((["submit", "--model", "m", "--prompt", "p"], True),
                              (["quote", "--model", "m"], False)):
        try:
            args = build_parser().parse_args([*head, *words])
        except UsageError as err:
            _one_line(str(err))
            continue
        except SystemExit:  # --help among the words
            continue
        try:
            req = request_from(args, with_prompt=with_prompt)
        except UsageError as err:
            _one_line(str(err))
            continue
        _sendable(req)
        if getattr(args, "max_cost", None) is not None:
            assert math.isfinite(args.max_cost) and args.max_cost >= 0


@FAST
@given(st.lists(nasty_text | st.sampled_from(["k=NaN", "k=Infinity", "k=-Infinity", "k=1e999",
                                             "k=" + "[" * 5000, "k={\"a\": NaN}", "k=true"]),
                max_size=5))
def test_option_pairs_are_checked_like_batch_options(pairs):
    try:
        options = parse_options(pairs)
    except UsageError as err:
        _one_line(str(err))
        return
    json.dumps(options, allow_nan=False).encode("utf-8")


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "-0.5", "1e999", "abc"])
def test_max_cost_must_be_a_finite_amount(text):
    with pytest.raises(UsageError, match="max-cost"):
        build_parser().parse_args(["batch", "f", "--max-cost", text])


@pytest.mark.parametrize("text", ["0", "-3", "1" * 40, "1.5", "x"])
def test_job_ids_are_positive_bounded_integers(text):
    with pytest.raises(UsageError):
        build_parser().parse_args(["show", text])


def test_argparse_namespace_from_the_table_has_every_field_request_from_reads():
    args = build_parser().parse_args(["submit", "--model", "m", "--prompt", "p"])
    assert isinstance(args, argparse.Namespace)
    assert request_from(args, with_prompt=True) == JobRequest(model="m", prompt="p")
