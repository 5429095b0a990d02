"""APIXO adapter: request mapping, validation, answer parsing, and the simulator round trip."""

from __future__ import annotations

import json

import httpx
import pytest

from tui.jobs import Job, JobRequest, JobState, ValidationError
from tui.providers import apixo
from tui.providers.apixo import ApixoProvider
from tui.providers.base import (
    AuthError,
    BadAnswer,
    Failed,
    Gone,
    InsufficientBalance,
    InvalidRequest,
    NetworkError,
    Processing,
    RateLimited,
    Ready,
    ServerError,
)
from tui.sim import SimServer

KEY = "sk-apixo-secret-123"
BASE = "https://api.apixo.test/api/v1"


def req(model: str = "wan-2-5-t2v", prompt: str = "a red fox in snow", **kw) -> JobRequest:
    return JobRequest(model=model, prompt=prompt, provider="apixo", **kw)


def job(remote_id: str = "task-1", model: str = "wan-2-5-t2v", **kw) -> Job:
    return Job(1, req(model), JobState.PROCESSING, 0.0, 0.0, remote_id=remote_id, **kw)


def envelope(data, code: int = 200, message: str = "success") -> dict:
    return {"code": code, "message": message, "data": data}


def mock_provider(handler, key: str | None = KEY) -> ApixoProvider:
    return ApixoProvider(BASE, key, transport=httpx.MockTransport(handler))


# ---------------------------------------------------------------- caps and mapping


def test_static_models_split_by_mode():
    caps = apixo.CAPS
    assert set(caps) == {"wan-2-5-t2v", "wan-2-5-i2v", "wan-2-5-video-t2v", "wan-2-5-video-i2v"}
    assert caps["wan-2-5-t2v"].prompt_limit == 800
    assert caps["wan-2-5-video-t2v"].prompt_limit == 1500
    assert caps["wan-2-5-t2v"].resolutions == ("720p", "1080p")
    assert caps["wan-2-5-video-i2v"].resolutions == ("480p", "720p", "1080p")
    assert caps["wan-2-5-video-t2v"].aspect_ratios == ("16:9", "9:16", "1:1", "4:3", "3:4")
    assert caps["wan-2-5-i2v"].aspect_ratios == ()
    assert caps["wan-2-5-i2v"].requires_image and not caps["wan-2-5-t2v"].accepts_image


def test_submit_body_sends_only_what_was_set():
    assert apixo.submit_body(req()) == {
        "request_type": "async",
        "input": {"mode": "text-to-video", "prompt": "a red fox in snow", "duration": 5},
    }


def test_submit_body_full_image_to_video():
    body = apixo.submit_body(
        req(
            "wan-2-5-video-i2v",
            duration="10s",
            resolution="480P",
            negative_prompt="blur",
            seed=7,
            image_url="https://img.test/fox.webp",
            options={"provider": "official", "enable_prompt_expansion": False},
        )
    )
    assert body == {
        "request_type": "async",
        "provider": "official",
        "input": {
            "mode": "image-to-video",
            "prompt": "a red fox in snow",
            "duration": 10,
            "negative_prompt": "blur",
            "resolution": "480p",
            "seed": 7,
            "image_urls": ["https://img.test/fox.webp"],
            "enable_prompt_expansion": False,
        },
    }


@pytest.mark.parametrize(
    ("request_", "usd"),
    [
        (req(resolution="720p"), 0.40),
        (req(resolution="1080p", duration="10s"), 1.30),
        (req("wan-2-5-video-t2v", resolution="480p"), 0.40),  # assumed 720p rate
        (req(), 0.65),  # unset resolution: priced as 1080p, the safe side
    ],
)
async def test_quote_is_a_labelled_estimate(request_, usd):
    provider = ApixoProvider(BASE, KEY)
    quote = await provider.quote(request_)
    assert quote.estimate and quote.usd == pytest.approx(usd)
    assert "estimate" in quote.label()
    await provider.aclose()


# Every documented limit, each broken once. Shared with the simulator test below.
INVALID = [
    pytest.param(req(prompt="x" * 801), id="prompt>800"),
    pytest.param(req("wan-2-5-video-t2v", prompt="x" * 1501), id="prompt>1500"),
    pytest.param(req(prompt="   "), id="empty-prompt"),
    pytest.param(req(negative_prompt="n" * 501), id="negative>500"),
    pytest.param(req(resolution="480p"), id="480p-on-wan-2-5"),
    pytest.param(req(resolution="4k"), id="resolution"),
    pytest.param(req(duration="15s"), id="duration"),
    pytest.param(req(aspect_ratio="4:3"), id="aspect-4:3-on-wan-2-5"),
    pytest.param(req("wan-2-5-i2v", image_url="https://i.test/a.png", aspect_ratio="16:9"),
                 id="i2v-aspect"),
    pytest.param(req("wan-2-5-i2v"), id="i2v-no-image"),
    pytest.param(req(image_url="https://i.test/a.png"), id="t2v-image"),
    pytest.param(req("wan-2-5-i2v", image_url="https://i.test/a.gif"), id="gif"),
    pytest.param(req("wan-2-5-i2v", image_url="data:image/png;base64,AAAA"), id="data-url"),
    pytest.param(req(audio=True), id="audio"),
    pytest.param(req(options={"provider": "cheapest"}), id="routing"),
    pytest.param(req(options={"enable_prompt_expansion": "yes"}), id="expansion-type"),
    pytest.param(req(options={"size": "1280*720"}), id="unknown-option"),
    pytest.param(req("wan-2-5"), id="unknown-model"),
]


@pytest.mark.parametrize("bad", INVALID)
def test_validate_refuses(bad):
    with pytest.raises(ValidationError) as info:
        apixo.validate(bad)
    assert "\n" not in str(info.value)


def test_validate_accepts_urls_without_extension_and_upper_case_resolution():
    apixo.validate(req("wan-2-5-i2v", image_url="https://i.test/render?id=5", resolution="720P"))
    apixo.validate(req("wan-2-5-i2v", image_url="https://i.test/a.JPEG"))


# ---------------------------------------------------------------- answer parsing


def test_outcomes_from_states():
    assert apixo.outcome_from_status({"state": "pending"}) == Processing(queued=True)
    assert apixo.outcome_from_status({"state": "processing"}) == Processing()
    ready = apixo.outcome_from_status(
        {"state": "success", "resultJson": json.dumps({"resultUrls": ["https://cdn/x.mp4"]})}
    )
    assert isinstance(ready, Ready) and ready.url == "https://cdn/x.mp4"
    failed = apixo.outcome_from_status(
        {"state": "failed", "failCode": "contentViolation", "failMsg": "nope"}
    )
    assert failed == Failed("contentViolation", "nope", retryable=False)
    timeout = apixo.outcome_from_status({"state": "failed", "failCode": "PROCESSING_TIMEOUT"})
    assert isinstance(timeout, Failed) and timeout.retryable


@pytest.mark.parametrize(
    "data",
    [
        {"state": "success", "resultJson": "{not json"},
        {"state": "success", "resultJson": json.dumps({"resultUrls": []})},
        {"state": "success", "resultJson": json.dumps({"other": 1})},
        {"state": "success"},
        {"state": "success", "resultJson": json.dumps({"resultUrls": ["ftp://x"]})},
        {"state": "exploded"},
        {},
    ],
)
def test_malformed_status_is_bad_answer(data):
    with pytest.raises(BadAnswer):
        apixo.outcome_from_status(data)


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (200, 400, InvalidRequest),  # HTTP 200, error in the envelope
        (200, 401, AuthError),
        (200, 402, InsufficientBalance),
        (400, 400, InvalidRequest),
        (402, 402, InsufficientBalance),
        (429, 429, RateLimited),
        (500, 500, ServerError),
        (503, 200, ServerError),  # HTTP status wins over a cheerful envelope
    ],
)
def test_envelope_errors(status, code, error):
    payload = envelope({"error": "reason from data"}, code=code, message="msg")
    with pytest.raises(error) as info:
        apixo.check_envelope(status, payload, {"retry-after": "7"}, "submit")
    assert "reason from data" in str(info.value)
    if error is RateLimited:
        assert info.value.retry_after == 7


# ---------------------------------------------------------------- malformed answers on the wire


async def test_submit_envelope_without_data_is_bad_answer_and_maybe_charged():
    provider = mock_provider(lambda r: httpx.Response(200, json={"code": 200, "message": "ok"}))
    with pytest.raises(BadAnswer) as info:
        await provider.submit(req())
    assert info.value.sent  # accepted with 200: may have been charged


async def test_status_result_json_garbage_is_bad_answer():
    data = {"taskId": "task-1", "state": "success", "resultJson": "resultUrls=[oops"}
    provider = mock_provider(lambda r: httpx.Response(200, json=envelope(data)))
    with pytest.raises(BadAnswer, match="resultJson"):
        await provider.poll(job())


async def test_poll_uses_wire_model_and_task_id_and_404_is_gone():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json=envelope({"error": "task not found"}, code=404))

    provider = mock_provider(handler)
    assert isinstance(await provider.poll(job(model="wan-2-5-video-i2v")), Gone)
    assert seen[0].url.path == "/api/v1/statusTask/wan-2-5-video"
    assert seen[0].url.params["taskId"] == "task-1"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"


# ---------------------------------------------------------------- against the simulator

SIM_KEY = "sim-apixo-key"


@pytest.fixture
def make_sim(make_clocked_sim):
    """In this file a simulator runs on the test's loop, its job time moved by hand."""
    return make_clocked_sim


@pytest.fixture
async def sim(make_sim):
    return await make_sim()


@pytest.fixture
async def connect():
    providers = []

    def make(server: SimServer, key: str = SIM_KEY, **kw) -> ApixoProvider:
        provider = ApixoProvider(server.url("apixo"), key, **kw)
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        await provider.aclose()


async def submitted(provider: ApixoProvider, request_: JobRequest) -> Job:
    sub = await provider.submit(request_)
    return Job(1, request_, JobState.QUEUED, 0.0, 0.0, remote_id=sub.remote_id)


async def download(provider: ApixoProvider, job_: Job) -> bytes:
    stream = await provider.open_download(job_)
    try:
        return b"".join([chunk async for chunk in stream.iter_bytes()])
    finally:
        await stream.aclose()


async def test_sim_pending_then_processing_then_ready(sim, connect):
    """APIXO reports `pending` before `processing` (the byte-exact download of the result is
    in the contract tests)."""
    provider = connect(sim)
    job_ = await submitted(provider, req(resolution="720p"))
    assert await provider.poll(job_) == Processing(queued=True)
    sim.clock.advance(5)
    assert await provider.poll(job_) == Processing()
    sim.clock.advance(20)
    ready = await provider.poll(job_)
    assert isinstance(ready, Ready) and ready.url.startswith(sim.base)


async def test_sim_records_only_the_fields_that_were_set(sim, connect):
    provider = connect(sim)
    job_ = await submitted(provider, req("wan-2-5-video-t2v", aspect_ratio="4:3"))
    assert sim.state.job(job_.remote_id).body == {
        "request_type": "async",
        "input": {"mode": "text-to-video", "prompt": "a red fox in snow", "duration": 5,
                  "aspect_ratio": "4:3"},
    }
    assert sim.state.queue_calls == [(job_.remote_id, True, 200)]


@pytest.mark.parametrize(
    ("prompt", "code", "retryable"),
    [
        ("a fox [sim:fail]", "PROCESSING_TIMEOUT", True),
        ("a fox [sim:policy]", "CONTENT_VIOLATION", False),
    ],
)
async def test_sim_failures_carry_fail_code(sim, connect, prompt, code, retryable):
    provider = connect(sim)
    job_ = await submitted(provider, req(prompt=prompt))
    sim.clock.advance(30)
    outcome = await provider.poll(job_)
    assert isinstance(outcome, Failed) and outcome.code == code
    assert outcome.retryable is retryable and outcome.message


async def test_sim_unreachable_image_fails_with_invalid_image_url(sim, connect):
    provider = connect(sim)
    job_ = await submitted(provider, req("wan-2-5-i2v", image_url="https://img.invalid/a.png"))
    sim.clock.advance(30)
    outcome = await provider.poll(job_)
    assert isinstance(outcome, Failed) and outcome.code == "INVALID_IMAGE_URL"


async def test_sim_cut_download_then_whole_retry(sim, connect):
    provider = connect(sim)
    job_ = await submitted(provider, req(prompt="a fox [sim:cut]"))
    sim.clock.advance(30)
    job_ = job_.with_(result_url=(await provider.poll(job_)).url)
    with pytest.raises(NetworkError):
        await download(provider, job_)
    assert await download(provider, job_) == sim.state.job(job_.remote_id).video_path.read_bytes()


async def test_sim_download_without_stored_url_polls_for_it(sim, connect):
    provider = connect(sim)
    job_ = await submitted(provider, req())
    sim.clock.advance(30)
    assert len(await download(provider, job_)) == sim.state.job(job_.remote_id).size


async def test_sim_short_balance_in_envelope_is_insufficient_balance(make_sim, connect):
    sim = await make_sim(balance_usd=0.1)
    with pytest.raises(InsufficientBalance) as info:
        await connect(sim).submit(req())
    assert info.value.detail["http_status"] == 200  # the error was only in the envelope
    assert sim.state.queue_calls == [(None, False, 402)]


@pytest.mark.parametrize(
    "body",
    [
        {"request_type": "async", "input": {"mode": "text-to-video", "prompt": "x" * 801}},
        {"input": {"mode": "text-to-video", "prompt": "fox", "duration": "5s"}},
        {"input": {"mode": "text-to-video", "prompt": "fox", "resolution": "480p"}},
        {"input": {"mode": "text-to-video", "prompt": "fox", "aspect_ratio": "4:3"}},
        {"input": {"mode": "text-to-video", "prompt": "fox", "negative_prompt": "n" * 501}},
        {"input": {"mode": "image-to-video", "prompt": "fox",
                   "image_urls": ["https://i.test/a.png", "https://i.test/b.png"]}},
        {"input": {"mode": "image-to-video", "prompt": "fox",
                   "image_urls": ["https://i.test/a.png"], "aspect_ratio": "16:9"}},
        {"input": {"mode": "image-to-video", "prompt": "fox",
                   "image_urls": ["https://i.test/a.gif"]}},
        {"provider": "cheap", "input": {"mode": "text-to-video", "prompt": "fox"}},
        {"input": {"prompt": "fox"}},
    ],
)
async def test_sim_itself_refuses_documented_limits(sim, body):
    async with httpx.AsyncClient() as client:
        resp = await client.post(
            f"{sim.url('apixo')}/generateTask/wan-2-5", json=body,
            headers={"Authorization": f"Bearer {SIM_KEY}"},
        )
    assert resp.status_code == 200 and resp.json()["code"] == 400
    assert resp.json()["data"]["error"]
