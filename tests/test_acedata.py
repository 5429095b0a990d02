"""AceData Cloud adapter: request mapping, validation, answer parsing, and the simulator."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tui.jobs import Job, JobRequest, JobState, ValidationError
from tui.providers import acedata
from tui.providers.acedata import AceDataProvider
from tui.providers.base import (
    AuthError,
    BadAnswer,
    ContentPolicy,
    Failed,
    Forbidden,
    Gone,
    InvalidRequest,
    Processing,
    RateLimited,
    Ready,
    ServerError,
)
from tui.sim import SimServer

KEY = "acedata-token-secret-456"
BASE = "https://api.acedata.test"
REFS = ["https://v.test/ref1.mp4"]


def req(model: str = "wan2.6-t2v", prompt: str = "a red fox in snow", **kw) -> JobRequest:
    return JobRequest(model=model, prompt=prompt, provider="acedata", **kw)


def job(remote_id: str = "t-1", job_id: int = 1, **kw) -> Job:
    return Job(job_id, req(), JobState.PROCESSING, 0.0, 0.0, remote_id=remote_id, **kw)


def mock_provider(handler, key: str | None = KEY) -> AceDataProvider:
    return AceDataProvider(BASE, key, transport=httpx.MockTransport(handler))


def record(task_id: str, response: dict | None = None, **kw) -> dict:
    rec = {"id": task_id, "created_at": 1700000000.5, "request": {}, **kw}
    if response is not None:
        rec["response"] = response
    return rec


# ---------------------------------------------------------------- caps and mapping


def test_static_models():
    caps = acedata.CAPS
    assert set(caps) == {"wan2.6-t2v", "wan2.6-i2v", "wan2.6-i2v-flash", "wan2.6-r2v"}
    assert caps["wan2.6-t2v"].durations == ("5s", "10s", "15s")
    assert caps["wan2.6-i2v-flash"].requires_image
    assert "reference_video_urls" in caps["wan2.6-r2v"].options
    assert "reference_video_urls" not in caps["wan2.6-i2v"].options
    assert all(c.audio_configurable and c.resolutions == ("480P", "720P", "1080P")
               for c in caps.values())


def test_submit_body_minimal_is_async_and_sends_nothing_unset():
    assert acedata.submit_body(req()) == {
        "action": "text2video",
        "model": "wan2.6-t2v",
        "prompt": "a red fox in snow",
        "async": True,
        "duration": 5,
    }


def test_submit_body_full():
    body = acedata.submit_body(
        req(
            "wan2.6-i2v",
            duration="15s",
            resolution="720p",
            negative_prompt="blur",
            audio=False,
            image_url="https://i.test/a.png",
            seed=3,
            options={"size": "1280*720", "shot_type": "multi", "prompt_extend": False,
                     "audio_url": "https://a.test/x.mp3"},
        )
    )
    assert body == {
        "action": "image2video",
        "model": "wan2.6-i2v",
        "prompt": "a red fox in snow",
        "async": True,
        "duration": 15,
        "resolution": "720P",
        "negative_prompt": "blur",
        "audio": False,
        "image_url": "https://i.test/a.png",
        "seed": 3,
        "size": "1280*720",
        "shot_type": "multi",
        "prompt_extend": False,
        "audio_url": "https://a.test/x.mp3",
    }


def test_r2v_is_image2video_with_references():
    body = acedata.submit_body(req("wan2.6-r2v", options={"reference_video_urls": REFS}))
    assert body["action"] == "image2video" and body["reference_video_urls"] == REFS
    assert "image_url" not in body


async def test_quote_is_a_labelled_estimate():
    provider = AceDataProvider(BASE, KEY)
    quote = await provider.quote(req(resolution="720P", duration="10s"))
    assert quote.estimate and quote.usd == pytest.approx(1.0)
    unset = await provider.quote(req())
    assert unset.usd == pytest.approx(5 * acedata.ASSUMED_USD_PER_SECOND["1080P"])
    await provider.aclose()


INVALID = [
    pytest.param(req(prompt="x" * (acedata.PROMPT_LIMIT + 1)), id="prompt-limit"),
    pytest.param(req(prompt=""), id="empty-prompt"),
    pytest.param(req(negative_prompt="n" * 501), id="negative>500"),
    pytest.param(req(duration="20s"), id="duration"),
    pytest.param(req(resolution="4K"), id="resolution"),
    pytest.param(req(aspect_ratio="16:9"), id="aspect-ratio"),
    pytest.param(req(image_url="https://i.test/a.png"), id="t2v-image"),
    pytest.param(req("wan2.6-i2v"), id="i2v-no-image"),
    pytest.param(req("wan2.6-i2v-flash"), id="flash-no-image"),
    pytest.param(req("wan2.6-i2v", image_url="data:image/png;base64,AAAA"), id="data-url"),
    pytest.param(req("wan2.6-r2v"), id="r2v-no-refs"),
    pytest.param(req("wan2.6-r2v", options={"reference_video_urls": []}), id="r2v-empty"),
    pytest.param(req("wan2.6-r2v", options={"reference_video_urls": ["file:///x.mp4"]}),
                 id="r2v-not-http"),
    pytest.param(req("wan2.6-r2v", options={"reference_video_urls": "https://v.test/a.mp4"}),
                 id="r2v-not-list"),
    pytest.param(req(options={"reference_video_urls": REFS}), id="refs-on-t2v"),
    pytest.param(req(options={"size": "1280x720"}), id="size-form"),
    pytest.param(req(options={"size": "0*720"}), id="size-zero"),
    pytest.param(req(options={"shot_type": "montage"}), id="shot-type"),
    pytest.param(req(options={"prompt_extend": "yes"}), id="prompt-extend-type"),
    pytest.param(req(options={"audio_url": "song.mp3"}), id="audio-url"),
    pytest.param(req(options={"callback_url": "https://x"}), id="unknown-option"),
    pytest.param(req("wan2.5-t2v"), id="unknown-model"),
]


@pytest.mark.parametrize("bad", INVALID)
def test_validate_refuses(bad):
    with pytest.raises(ValidationError) as info:
        acedata.validate(bad)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- task records


def test_outcomes_from_records():
    assert acedata.outcome_from_record(record("t")) == Processing()
    assert acedata.outcome_from_record(record("t", {})) == Processing()
    # a partial response while running is not "finished"
    assert acedata.outcome_from_record(record("t", {"success": True})) == Processing()
    assert acedata.outcome_from_record(
        record("t", {"state": "pending"})) == Processing(queued=True)
    done = acedata.outcome_from_record(
        record("t", {"success": True, "state": "succeeded", "video_url": "https://cdn/v.mp4"},
               finished_at=1700000090.0)
    )
    assert isinstance(done, Ready) and done.url == "https://cdn/v.mp4"
    nested = acedata.outcome_from_record(
        record("t", {"success": True, "data": [{"video_url": "https://cdn/n.mp4"}]},
               finished_at=1.0)
    )
    assert isinstance(nested, Ready) and nested.url == "https://cdn/n.mp4"
    failed = acedata.outcome_from_record(
        record("t", {"success": False, "error": {"code": "forbidden", "message": "moderated"}})
    )
    assert failed == Failed("forbidden", "moderated", retryable=False)
    timeout = acedata.outcome_from_record(record("t", {"state": "failed",
                                                       "error": {"code": "timeout"}}))
    assert isinstance(timeout, Failed) and timeout.retryable


@pytest.mark.parametrize(
    "answer",
    [
        {},  # no task record at all
        [],
        record("t", "not an object"),
        record("t", {"success": True, "state": "succeeded"}),  # finished without a URL
    ],
)
def test_malformed_records_are_bad_answers(answer):
    with pytest.raises(BadAnswer):
        acedata.outcome_from_record(answer)


@pytest.mark.parametrize(
    ("status", "code", "message", "error"),
    [
        (400, "bad_request", "prompt missing", InvalidRequest),
        (400, "token_mismatched", "mismatch", InvalidRequest),
        (400, "api_not_implemented", "nope", InvalidRequest),
        (401, "invalid_token", "bad token", AuthError),
        (403, "forbidden", "content moderation refused the prompt", ContentPolicy),
        (403, "forbidden", "account suspended", Forbidden),
        (429, "too_many_requests", "slow down", RateLimited),
        (500, "api_error", "boom", ServerError),
        (504, "timeout", "upstream timed out", ServerError),
        (200, "bad_request", "error with HTTP 200", InvalidRequest),
    ],
)
def test_error_codes(status, code, message, error):
    payload = {"success": False, "error": {"code": code, "message": message}, "trace_id": "tr-9"}
    with pytest.raises(error) as info:
        acedata.raise_for_answer(status, payload, {"retry-after": "3"}, "submit")
    err = info.value
    assert err.detail["trace_id"] == "tr-9" and err.detail["code"] == code
    assert message in str(err) and "\n" not in str(err)
    if error is RateLimited:
        assert err.retry_after == 3


def test_submit_timeout_may_have_been_charged():
    payload = {"success": False, "error": {"code": "timeout", "message": "t"}}
    with pytest.raises(ServerError) as info:
        acedata.raise_for_answer(504, payload, {}, "submit")
    assert info.value.sent


# ---------------------------------------------------------------- malformed answers on the wire


async def test_batch_without_items_is_bad_answer_for_every_job():
    provider = mock_provider(lambda r: httpx.Response(200, json={"count": 2}))
    out = await provider.poll_many([job("a", 1), job("b", 2)])
    assert set(out) == {1, 2} and all(isinstance(v, BadAnswer) for v in out.values())


async def test_batch_missing_item_falls_back_to_single_retrieve():
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        if body["action"] == "retrieve_batch":
            return httpx.Response(200, json={"items": [record("a")], "count": 1})
        return httpx.Response(
            404, json={"success": False, "error": {"code": "not_found", "message": "no task"}}
        )

    provider = mock_provider(handler)
    out = await provider.poll_many([job("a", 1), job("b", 2)])
    assert out[1] == Processing() and isinstance(out[2], Gone)
    assert [b["action"] for b in bodies] == ["retrieve_batch", "retrieve"]
    assert bodies[1] == {"id": "b", "action": "retrieve"}


async def test_batch_chunks_above_the_limit():
    sizes = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.content)["ids"]
        sizes.append(len(ids))
        return httpx.Response(200, json={"items": [record(i) for i in ids], "count": len(ids)})

    provider = mock_provider(handler)
    jobs = [job(f"t{i}", i) for i in range(acedata.BATCH_LIMIT + 7)]
    out = await provider.poll_many(jobs)
    assert sizes == [acedata.BATCH_LIMIT, 7] and len(out) == len(jobs)


async def test_batch_poll_is_advertised():
    provider = AceDataProvider(BASE, KEY)
    assert provider.batch_poll and provider.info().batch_poll
    await provider.aclose()


# ---------------------------------------------------------------- against the simulator

SIM_KEY = "sim-acedata-token"


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

    def make(server: SimServer, key: str = SIM_KEY, **kw) -> AceDataProvider:
        provider = AceDataProvider(server.url("acedata"), key, **kw)
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        await provider.aclose()


async def submitted(provider: AceDataProvider, request_: JobRequest, job_id: int = 1) -> Job:
    sub = await provider.submit(request_)
    return Job(job_id, request_, JobState.QUEUED, 0.0, 0.0, remote_id=sub.remote_id)


async def download(provider: AceDataProvider, job_: Job) -> bytes:
    stream = await provider.open_download(job_)
    try:
        return b"".join([chunk async for chunk in stream.iter_bytes()])
    finally:
        await stream.aclose()


async def test_sim_gets_async_true_and_nothing_unset(sim, connect):
    provider = connect(sim)
    plain = await submitted(provider, req())
    image = await submitted(provider, req("wan2.6-i2v", image_url="https://i.test/a.png"))
    assert sim.state.job(plain.remote_id).body == {
        "action": "text2video", "model": "wan2.6-t2v", "prompt": "a red fox in snow",
        "async": True, "duration": 5,
    }
    body = sim.state.job(image.remote_id).body
    assert body["async"] is True and body["image_url"] == "https://i.test/a.png"
    assert "negative_prompt" not in body and "resolution" not in body and "audio" not in body


async def test_sim_poll_many_thirty_jobs_in_one_request(sim, connect):
    provider = connect(sim)
    jobs = [await submitted(provider, req(prompt=f"fox {i}"), i) for i in range(30)]
    sim.clock.advance(30)
    before = sim.state.counter("acedata", "/wan/tasks")
    out = await provider.poll_many(jobs)
    assert sim.state.counter("acedata", "/wan/tasks") - before == 1
    assert set(out) == {j.id for j in jobs}
    assert all(isinstance(o, Ready) for o in out.values())


async def test_sim_poll_many_mixes_running_failed_and_done(sim, connect):
    provider = connect(sim)
    done = await submitted(provider, req(), 1)
    failed = await submitted(provider, req(prompt="fox [sim:policy]"), 2)
    sim.clock.advance(30)
    running = await submitted(provider, req(), 3)
    out = await provider.poll_many([done, failed, running, job("unknown-task", 4)])
    assert isinstance(out[1], Ready) and out[3] == Processing()
    assert isinstance(out[2], Failed) and out[2].code == "forbidden"
    assert isinstance(out[4], Gone)  # left out of items, then a single retrieve said 404


async def test_sim_failure_is_failed_with_api_error(sim, connect):
    provider = connect(sim)
    job_ = await submitted(provider, req(prompt="a fox [sim:fail]"))
    sim.clock.advance(30)
    outcome = await provider.poll(job_)
    assert isinstance(outcome, Failed) and outcome.code == "api_error" and outcome.retryable


async def test_sim_invalid_token(sim, connect):
    with pytest.raises(AuthError) as info:
        await connect(sim, key="wrong").submit(req())
    assert info.value.detail["code"] == "invalid_token" and info.value.detail["trace_id"]


async def test_sim_bad_request(sim, connect):
    with pytest.raises(InvalidRequest) as info:
        await connect(sim)._post("/wan/tasks", {"action": "explode"}, what="status",
                                 rate_class="retrieve")
    assert info.value.detail["code"] == "bad_request" and info.value.status == 400


@pytest.mark.parametrize(("fault", "status"), [("rate_500", 500), ("rate_503", 504)])
async def test_sim_task_faults_are_server_errors(make_sim, connect, fault, status):
    sim = await make_sim(**{fault: 1.0})
    provider = connect(sim)
    job_ = await submitted(provider, req())
    with pytest.raises(ServerError) as info:
        await provider.poll(job_)
    assert info.value.status == status
    out = await provider.poll_many([job_])
    assert isinstance(out[1], ServerError)


async def test_sim_without_async_blocks_until_done(sim):
    body = {"action": "text2video", "model": "wan2.6-t2v", "prompt": "a slow fox"}
    async with httpx.AsyncClient(timeout=10) as client:
        call = asyncio.ensure_future(client.post(
            f"{sim.url('acedata')}/wan/videos", json=body,
            headers={"Authorization": f"Bearer {SIM_KEY}"},
        ))
        await asyncio.sleep(0.3)
        assert not call.done()  # the real API holds the connection until the video is done
        sim.clock.advance(30)
        answer = (await call).json()
    assert answer["success"] is True and answer["state"] == "succeeded"
    assert answer["video_url"].startswith(sim.base) and answer["task_id"]


@pytest.mark.parametrize(
    "body",
    [
        {"action": "text2video", "model": "wan2.6-i2v", "prompt": "fox"},
        {"action": "image2video", "model": "wan2.6-i2v", "prompt": "fox"},
        {"action": "image2video", "model": "wan2.6-r2v", "prompt": "fox"},
        {"action": "text2video", "model": "wan2.6-t2v", "prompt": "fox", "duration": "5"},
        {"action": "text2video", "model": "wan2.6-t2v", "prompt": "fox", "resolution": "720p"},
        {"action": "text2video", "model": "wan2.6-t2v", "prompt": "fox", "size": "1280x720"},
        {"action": "text2video", "model": "wan2.6-t2v", "prompt": "fox", "shot_type": "x"},
        {"action": "text2video", "model": "wan2.6-t2v", "prompt": ""},
    ],
)
async def test_sim_itself_refuses_bad_bodies(sim, body):
    async with httpx.AsyncClient() as client:
        resp = await client.post(
            f"{sim.url('acedata')}/wan/videos", json={**body, "async": True},
            headers={"Authorization": f"Bearer {SIM_KEY}"},
        )
    assert resp.status_code == 400
    payload = resp.json()
    assert payload["success"] is False and payload["error"]["code"] == "bad_request"
    assert payload["trace_id"]
