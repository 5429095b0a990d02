"""The simulator on a real loopback socket, driven by httpx: no mocks.

Job progress uses a fake clock (`sim.state.clock`), so nothing here waits for a job to run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import httpx
import pytest
from conftest import FakeClock

from tui.sim import Faults, SimConfig, SimServer, parse_triggers
from tui.sim.server import run_cli

KEY = "sim-venice-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
WAN = "wan-2.5-preview-text-to-video"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_config(**faults: float) -> SimConfig:
    return SimConfig(mean_s=10.0, spread=0.2, seed=7, faults=Faults(**faults))


async def start(config: SimConfig, clock: FakeClock) -> SimServer:
    server = SimServer(config, clock=clock)
    await server.start()
    return server


@pytest.fixture
async def sim(clock: FakeClock):
    server = await start(make_config(), clock)
    yield server
    await server.stop()


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


class Venice:
    """Tiny test-side client: the endpoints with the key, returning raw responses."""

    def __init__(self, sim: SimServer, client: httpx.AsyncClient) -> None:
        self.url = sim.url("venice")
        self.client = client

    async def post(self, route: str, body: dict, headers: dict | None = None) -> httpx.Response:
        return await self.client.post(self.url + route, json=body, headers=headers or AUTH)

    async def queue(self, prompt: str = "a red fox in snow", model: str = WAN, **extra) -> str:
        body = {"model": model, "prompt": prompt, "duration": "5s"} | extra
        r = await self.post("/video/queue", body)
        assert r.status_code == 200, r.text
        return r.json()["queue_id"]

    async def retrieve(self, queue_id: str, model: str = WAN, **extra) -> httpx.Response:
        return await self.post("/video/retrieve", {"model": model, "queue_id": queue_id} | extra)

    async def complete(self, queue_id: str, model: str = WAN) -> httpx.Response:
        return await self.post("/video/complete", {"model": model, "queue_id": queue_id})


@pytest.fixture
def venice(sim: SimServer, client: httpx.AsyncClient) -> Venice:
    return Venice(sim, client)


def finish_all(sim: SimServer, clock: FakeClock) -> None:
    clock.advance(max(j.run_s for j in sim.state.jobs_snapshot()) + 1)


# ---------------------------------------------------------------- catalogue and quotes


async def test_models_listing_needs_no_key(sim: SimServer, client: httpx.AsyncClient) -> None:
    r = await client.get(sim.url("venice") + "/models", params={"type": "video"})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list" and body["type"] == "video"
    models = {m["id"]: m for m in body["data"]}
    assert len(models) >= 10
    wan = models[WAN]["model_spec"]["constraints"]
    assert wan == {
        "model_type": "text-to-video",
        "durations": ["5s", "10s"],
        "resolutions": ["480p", "720p", "1080p"],
        "aspect_ratios": ["16:9", "9:16", "1:1"],
        "audio": True,
        "audio_configurable": True,
        "prompt_character_limit": 2500,
    }
    i2v = models["wan-2.5-preview-image-to-video"]["model_spec"]["constraints"]
    assert i2v["model_type"] == "image-to-video" and i2v["aspect_ratios"] == []
    kinds = {m["model_spec"]["constraints"]["model_type"] for m in models.values()}
    assert kinds == {"text-to-video", "image-to-video", "video"}
    deprecated = [m for m in models.values() if "deprecation" in m["model_spec"]]
    assert deprecated and deprecated[0]["model_spec"]["deprecation"]["replacementModelId"] in models
    assert "x-ratelimit-remaining-requests" in r.headers
    # Without ?type=video Venice lists text models: no video ones.
    r = await client.get(sim.url("venice") + "/models")
    assert r.json()["data"] == []


@pytest.mark.parametrize(
    ("body", "usd"),
    [
        ({"model": WAN, "duration": "5s", "audio": False}, 0.25),
        ({"model": WAN, "duration": "5s"}, 0.3125),  # audio on by default
        ({"model": WAN, "duration": "10s", "resolution": "1080p", "audio": False}, 0.8),
        ({"model": WAN, "duration": "5s", "resolution": "480p", "audio": False}, 0.15),
        ({"model": "veo3.1-fast-text-to-video", "duration": "8s"}, 1.5),
    ],
)
async def test_quote_is_deterministic(venice: Venice, body: dict, usd: float) -> None:
    r = await venice.post("/video/quote", body)
    assert r.status_code == 200
    assert r.json()["quote"] == pytest.approx(usd)


async def test_quote_needs_duration(venice: Venice) -> None:
    r = await venice.post("/video/quote", {"model": WAN})
    assert r.status_code == 400
    assert r.json()["details"]["duration"]["_errors"] == ["Required"]


# ---------------------------------------------------------------- the happy path


async def test_queue_then_retrieve_gives_a_real_mp4(
    sim: SimServer, venice: Venice, clock: FakeClock, tmp_path: Path
) -> None:
    r = await venice.post("/video/queue", {"model": WAN, "prompt": "a fox", "duration": "5s"})
    assert r.status_code == 200
    assert r.headers["x-venice-balance-usd"] == "1000.0000"  # balance before the call
    assert set(r.json()) == {"model", "queue_id"}
    queue_id = r.json()["queue_id"]

    clock.advance(1.5)
    r = await venice.retrieve(queue_id)
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "status": "PROCESSING",
        "average_execution_time": int(10.0 * (1 + 0.6 * 0.2) * 1000),
        "execution_duration": 1500,
    }

    finish_all(sim, clock)
    r = await venice.retrieve(queue_id)
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert int(r.headers["content-length"]) == len(r.content) > 100_000
    assert float(r.headers["x-venice-balance-usd"]) == pytest.approx(1000 - 0.3125)
    job = sim.state.job(queue_id)
    assert job is not None and hashlib.sha256(r.content).hexdigest() == job.sha256
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(r.content)
    with av.open(str(clip)) as container:
        # the asked 5 s, drawn with the 2 s budget of 48 frames: 10 fps, 50 frames
        assert sum(1 for _ in container.decode(video=0)) == 50
        assert float(container.duration / 1_000_000) == pytest.approx(5.0, abs=0.1)
    assert sim.state.queue_calls == [(queue_id, True, 200)]
    assert sim.state.balance_usd == pytest.approx(1000 - 0.3125)


async def test_each_job_gets_its_own_bytes(sim: SimServer, venice: Venice, clock) -> None:
    ids = [await venice.queue("same prompt") for _ in range(2)]
    finish_all(sim, clock)
    bodies = [(await venice.retrieve(i)).content for i in ids]
    assert bodies[0] != bodies[1]


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": None}, "model"),
        ({"prompt": None}, "prompt"),
        ({"duration": None}, "duration"),
        ({"model": "no-such-model"}, "model"),
        ({"duration": "7s"}, "duration"),
        ({"duration": 5}, "duration"),
        ({"resolution": "4k"}, "resolution"),
        ({"aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"prompt": "x" * 2501}, "prompt"),
        ({"model": "ltx-2-fast-text-to-video", "duration": "6s", "prompt": "x" * 1001}, "prompt"),
        ({"model": "wan-2.5-preview-image-to-video", "aspect_ratio": "16:9",
          "image_url": "https://example.com/a.png"}, "aspect_ratio"),
        ({"model": "wan-2.5-preview-image-to-video"}, "image_url"),
        ({"image_url": "https://example.com/a.png"}, "image_url"),
        ({"model": "veo3.1-fast-text-to-video", "duration": "8s", "audio": False}, "audio"),
        ({"audio": "yes"}, "audio"),
    ],
)  # fmt: skip
async def test_validation_errors_name_the_field(
    sim: SimServer, venice: Venice, change: dict, field: str
) -> None:
    body = {"model": WAN, "prompt": "a fox", "duration": "5s"} | change
    body = {k: v for k, v in body.items() if v is not None}
    r = await venice.post("/video/queue", body)
    assert r.status_code == 400, r.text
    assert r.json()["details"][field]["_errors"]
    assert sim.state.queue_calls == [(None, False, 400)]
    assert sim.state.balance_usd == 1000.0


async def test_image_to_video_accepts_a_data_url(venice: Venice) -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    await venice.queue(model="wan-2.5-preview-image-to-video", image_url=image)


async def test_bad_json_and_oversized_bodies(sim: SimServer, venice: Venice) -> None:
    r = await venice.client.post(venice.url + "/video/queue", content=b"{nope", headers=AUTH)
    assert r.status_code == 400 and "error" in r.json()
    big = b'{"model": "' + b"x" * (36 * 1024 * 1024) + b'"}'
    r = await venice.client.post(venice.url + "/video/queue", content=big, headers=AUTH)
    assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert [status for _, _, status in sim.state.queue_calls] == [400, 413]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
async def test_missing_or_wrong_key_is_401(sim: SimServer, venice: Venice, headers) -> None:
    body = {"model": WAN, "prompt": "a fox", "duration": "5s"}
    r = await venice.client.post(venice.url + "/video/queue", json=body, headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": "Authentication failed"}
    assert "x-venice-balance-usd" not in r.headers
    assert sim.state.queue_calls == [(None, False, 401)] and not sim.state.jobs_snapshot()


async def test_short_balance_is_402(clock: FakeClock, client) -> None:
    config = make_config()
    config.balance_usd = 0.3
    sim = await start(config, clock)
    try:
        venice = Venice(sim, client)
        await venice.queue(audio=False)  # 0.25
        r = await venice.post("/video/queue", {"model": WAN, "prompt": "b", "duration": "5s"})
        assert r.status_code == 402
        assert r.json() == {"error": "Insufficient USD or VCU balance"}
        assert sim.state.balance_usd == pytest.approx(0.05)
        assert [charged for _, charged, _ in sim.state.queue_calls] == [True, False]
    finally:
        await sim.stop()


async def test_unknown_route_and_method(sim: SimServer, venice: Venice, client) -> None:
    assert (await venice.post("/video/nothing", {})).status_code == 404
    assert (await client.get(venice.url + "/video/queue", headers=AUTH)).status_code == 405
    assert (await client.get(sim.base + "/nowhere")).status_code == 404


async def test_retrieve_with_another_model_is_400(venice: Venice) -> None:
    queue_id = await venice.queue()
    r = await venice.retrieve(queue_id, model="wan-2-7-text-to-video")
    assert r.status_code == 400 and "model" in r.json()["details"]


# ---------------------------------------------------------------- deletion


async def test_complete_runs_hook_before_delete_then_404(
    sim: SimServer, venice: Venice, clock: FakeClock
) -> None:
    queue_id = await venice.queue()
    finish_all(sim, clock)
    assert (await venice.retrieve(queue_id)).status_code == 200
    seen = []

    def hook(job) -> None:
        # The hook runs while the media still exists: a client can check its own copy here.
        seen.append((job.remote_id, job.deleted, job.video_path.exists()))

    sim.state.on_delete = hook
    r = await venice.complete(queue_id)
    assert r.status_code == 200 and r.json() == {"success": True}
    assert seen == [(queue_id, False, True)]
    assert [rid for rid, _ in sim.state.complete_calls] == [queue_id]
    r = await venice.retrieve(queue_id)
    assert r.status_code == 404 and r.json() == {"error": "Media not found"}
    assert (await venice.complete(queue_id)).status_code == 404


async def test_delete_media_on_completion_deletes_after_sending(
    sim: SimServer, venice: Venice, clock: FakeClock
) -> None:
    queue_id = await venice.queue()
    finish_all(sim, clock)
    deleted = []
    sim.state.on_delete = lambda job: deleted.append(job.remote_id)
    r = await venice.retrieve(queue_id, delete_media_on_completion=True)
    assert r.status_code == 200 and len(r.content) == int(r.headers["content-length"])
    assert deleted == [queue_id]
    assert (await venice.retrieve(queue_id)).status_code == 404


async def test_unknown_queue_id_is_404(venice: Venice) -> None:
    r = await venice.retrieve("00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and r.json() == {"error": "Media not found"}


# ---------------------------------------------------------------- rate limits


async def test_rate_headers_and_429_over_the_window(clock: FakeClock, client) -> None:
    sim = await start(make_config(retrieve_limit_per_min=3), clock)
    try:
        venice = Venice(sim, client)
        queue_id = await venice.queue()
        remaining = []
        for _ in range(3):
            r = await venice.retrieve(queue_id)
            assert r.status_code == 200
            assert r.headers["x-ratelimit-limit-requests"] == "3"
            remaining.append(int(r.headers["x-ratelimit-remaining-requests"]))
        assert remaining == [2, 1, 0]
        r = await venice.retrieve(queue_id)
        assert r.status_code == 429 and r.json() == {"error": "Rate limit exceeded"}
        assert 55 <= int(r.headers["retry-after"]) <= 60
        reset = int(r.headers["x-ratelimit-reset-requests"])
        assert time.time() + 55 <= reset <= time.time() + 61
        # The queue class is a separate budget.
        r = await venice.post("/video/quote", {"model": WAN, "duration": "5s"})
        assert r.status_code == 200 and r.headers["x-ratelimit-limit-requests"] == "40"
        stats = (await client.get(sim.base + "/_sim/stats")).json()
        assert stats["rate_limited"] == 1
        assert stats["endpoints"]["venice /api/v1/video/retrieve"] == {"200": 3, "429": 1}
    finally:
        await sim.stop()


async def test_many_failures_block_the_key(clock: FakeClock, client) -> None:
    sim = await start(make_config(failure_block_threshold=3), clock)
    try:
        venice = Venice(sim, client)
        for _ in range(4):
            assert (await venice.retrieve("missing")).status_code == 404
        r = await venice.post("/video/quote", {"model": WAN, "duration": "5s"})
        assert r.status_code == 429 and 29 <= int(r.headers["retry-after"]) <= 30
    finally:
        await sim.stop()


# ---------------------------------------------------------------- faults


async def test_cut_trigger_cuts_the_first_download_only(
    sim: SimServer, venice: Venice, clock: FakeClock
) -> None:
    queue_id = await venice.queue("a fox [sim:cut]")
    finish_all(sim, clock)
    with pytest.raises(httpx.RemoteProtocolError):
        await venice.retrieve(queue_id)
    r = await venice.retrieve(queue_id)
    assert r.status_code == 200 and len(r.content) == int(r.headers["content-length"])
    assert sim.state.stats()["cut_downloads"] == 1


async def test_cut_body_is_shorter_than_promised(
    sim: SimServer, venice: Venice, clock: FakeClock
) -> None:
    queue_id = await venice.queue("[sim:cut] streamed")
    finish_all(sim, clock)
    got = 0
    body = {"model": WAN, "queue_id": queue_id}
    with pytest.raises(httpx.RemoteProtocolError):
        async with venice.client.stream(
            "POST", venice.url + "/video/retrieve", json=body, headers=AUTH
        ) as r:
            promised = int(r.headers["content-length"])
            async for chunk in r.aiter_raw():
                got += len(chunk)
    assert 0 < got < promised


@pytest.mark.parametrize(
    ("trigger", "status"), [("[sim:policy]", 422), ("[sim:fail]", 500), ("[sim:expire]", 404)]
)
async def test_failure_triggers_answer_once_finished(
    sim: SimServer, venice: Venice, clock: FakeClock, trigger: str, status: int
) -> None:
    queue_id = await venice.queue(f"a fox {trigger}")
    assert (await venice.retrieve(queue_id)).json()["status"] == "PROCESSING"
    finish_all(sim, clock)
    for _ in range(2):  # and it stays that way
        r = await venice.retrieve(queue_id)
        assert r.status_code == status
    if status == 422:
        error = r.json()["error"]
        assert error["type"] == "provider_content_policy" and error["credits_refunded"] is True
        assert sim.state.balance_usd == 1000.0  # refunded once, not twice


async def test_tiny_trigger_gives_a_small_clip(sim: SimServer, venice: Venice, clock) -> None:
    queue_id = await venice.queue("moderated [sim:tiny]")
    finish_all(sim, clock)
    r = await venice.retrieve(queue_id)
    assert r.headers["content-type"] == "video/mp4" and len(r.content) < 100_000


async def test_download_url_model(sim: SimServer, venice: Venice, clock, client) -> None:
    model = "sora-2-text-to-video"
    r = await venice.post("/video/queue", {"model": model, "prompt": "a fox", "duration": "4s"})
    answer = r.json()
    url = answer["download_url"]
    assert url.startswith(sim.base + "/files/")
    assert (await client.get(url)).status_code == 404  # not finished yet
    finish_all(sim, clock)
    r = await venice.retrieve(answer["queue_id"], model=model)
    assert r.status_code == 200 and r.json() == {"status": "COMPLETED"}
    r = await client.get(url)  # no auth needed
    assert r.headers["content-type"] == "video/mp4" and len(r.content) > 100_000
    assert (await venice.complete(answer["queue_id"], model=model)).status_code == 200
    assert (await client.get(url)).status_code == 404


async def test_ambiguous_queue_still_charges(clock: FakeClock, client) -> None:
    sim = await start(make_config(queue_ambiguous=1.0), clock)
    try:
        venice = Venice(sim, client)
        r = await venice.post("/video/queue", {"model": WAN, "prompt": "a", "duration": "5s"})
        assert r.status_code == 500
        ((remote_id, charged, status),) = sim.state.queue_calls
        assert charged and status == 500 and sim.state.job(remote_id) is not None
        assert sim.state.balance_usd < 1000.0
    finally:
        await sim.stop()


@pytest.mark.parametrize(("faults", "status"), [({"rate_500": 1.0}, 500), ({"rate_503": 1.0}, 503)])
async def test_random_retrieve_faults(clock, client, faults: dict, status: int) -> None:
    sim = await start(make_config(**faults), clock)
    try:
        venice = Venice(sim, client)
        queue_id = await venice.queue()
        assert (await venice.retrieve(queue_id)).status_code == status
    finally:
        await sim.stop()


async def test_random_429_before_anything(clock: FakeClock, client) -> None:
    sim = await start(make_config(rate_429=1.0), clock)
    try:
        venice = Venice(sim, client)
        r = await venice.post("/video/queue", {"model": WAN, "prompt": "a", "duration": "5s"})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 3
        assert not sim.state.jobs_snapshot() and sim.state.queue_calls == [(None, False, 429)]
    finally:
        await sim.stop()


async def test_expiry_fraction_and_cut_rate(clock: FakeClock, client) -> None:
    sim = await start(make_config(rate_404=1.0, cut_rate=1.0), clock)
    try:
        venice = Venice(sim, client)
        expired = await venice.queue()
        finish_all(sim, clock)
        assert (await venice.retrieve(expired)).status_code == 404
        sim.state.config.faults.rate_404 = 0.0
        kept = await venice.queue()
        finish_all(sim, clock)
        with pytest.raises(httpx.RemoteProtocolError):
            await venice.retrieve(kept)
    finally:
        await sim.stop()


async def test_slow_answers(clock: FakeClock, client) -> None:
    sim = await start(make_config(slow_s=0.2), clock)
    try:
        started = time.monotonic()
        await client.get(sim.url("venice") + "/models?type=video")
        assert time.monotonic() - started >= 0.2
    finally:
        await sim.stop()


# ---------------------------------------------------------------- the HTTP layer


async def test_keep_alive_serves_several_requests_per_connection(sim: SimServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    try:
        for _ in range(3):
            writer.write(b"GET /_sim/stats HTTP/1.1\r\nHost: sim\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            json.loads(await reader.readexactly(length))
    finally:
        writer.close()


async def test_a_handler_bug_is_a_500_not_a_dead_server(sim: SimServer, client) -> None:
    async def boom(req, subpath):
        raise RuntimeError("kaboom")

    real = sim.apis["venice"].handle
    sim.apis["venice"].handle = boom
    r = await client.get(sim.url("venice") + "/models")
    assert r.status_code == 500 and "simulator bug" in r.json()["error"]
    sim.apis["venice"].handle = real
    assert (await client.get(sim.url("venice") + "/models")).status_code == 200


def test_running_in_a_thread() -> None:
    with SimServer.running(SimConfig(mean_s=0.0, seed=1)) as sim:
        assert sim.base.startswith("http://127.0.0.1:")
        with httpx.Client(timeout=10) as c:
            body = {"model": WAN, "prompt": "threaded", "duration": "5s"}
            queue_id = c.post(sim.url("venice") + "/video/queue", json=body, headers=AUTH).json()[
                "queue_id"
            ]
            r = c.post(
                sim.url("venice") + "/video/retrieve",
                json={"model": WAN, "queue_id": queue_id},
                headers=AUTH,
            )
            assert r.headers["content-type"] == "video/mp4"
            assert c.get(sim.base + "/_sim/stats").json()["jobs"] == 1
        base = sim.base
    with pytest.raises(httpx.ConnectError):
        httpx.get(base + "/_sim/stats")


def test_parse_triggers() -> None:
    assert parse_triggers("a [sim:CUT] b [sim:tiny] [sim:bogus]") == {"cut", "tiny"}
    assert parse_triggers("plain") == frozenset()


# ---------------------------------------------------------------- the CLI


def test_cli_argument_error_is_one_line(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(["--fault-429", "2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--fault-429" in err


def test_cli_runs_until_interrupted() -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.sim", "--port", "0", "--mean", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("venice ") and "key: sim-venice-key" in first
        url = first.split()[1]
        assert httpx.get(url + "/models?type=video", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in err
