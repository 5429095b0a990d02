"""The contract every adapter keeps, one test per promise, parametrized over the providers.

Against the simulator on loopback (clocked: job time is moved by hand) and, for answers no
simulator gives, httpx.MockTransport. What one provider does beyond this lives in its own
module (test_apixo.py, test_acedata.py, test_sim.py for Venice).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from conftest import T2V, VENICE_KEY, eventually
from test_acedata import INVALID as ACEDATA_INVALID
from test_apixo import INVALID as APIXO_INVALID

from tui.jobs import Job, JobRequest, JobState
from tui.providers.acedata import AceDataProvider
from tui.providers.apixo import ApixoProvider
from tui.providers.base import (
    AuthError,
    BadAnswer,
    Forbidden,
    Gone,
    InsufficientBalance,
    InvalidRequest,
    LocalRefusal,
    NetworkError,
    NotConfigured,
    NotFound,
    Processing,
    Provider,
    RateLimited,
    Ready,
    ServerError,
    Unsupported,
)
from tui.providers.http import HttpPolicy
from tui.providers.venice import VeniceProvider
from tui.sim import SimServer

KEY = "sk-contract-secret-789"


@dataclass(frozen=True)
class Spec:
    """What the contract needs to know to drive one adapter."""

    name: str
    cls: type
    sim_key: str
    model: str
    key_env: str  # named in the not-configured message
    empty_accept: Any  # a 200 submit answer without an id
    id_field: str  # the id's name, said in that error
    first_poll: Processing | None = None  # exact first outcome, where the provider's is plain
    invalid: list = field(default_factory=list)  # requests refused before the wire
    static_models: bool = True
    can_delete: bool = False
    delete_says: str = ""
    gone_on_result_url: tuple[int, ...] = (403, 404)  # result-URL answers that mean expired

    def req(self, prompt: str = "a red fox in snow", **kw) -> JobRequest:
        return JobRequest(model=self.model, prompt=prompt, provider=self.name, **kw)

    def job(self, remote_id: str = "t-1", **kw) -> Job:
        return Job(1, self.req(), JobState.PROCESSING, 0.0, 0.0, remote_id=remote_id, **kw)

    def mock(self, handler: Callable[[httpx.Request], httpx.Response],
             key: str | None = KEY) -> Provider:
        return self.cls("https://api.contract.test/v1", key,
                        transport=httpx.MockTransport(handler))


SPECS = [
    Spec("venice", VeniceProvider, VENICE_KEY, T2V, "VENICE_API_KEY",
         empty_accept={}, id_field="queue_id", static_models=False, can_delete=True,
         gone_on_result_url=(404,)),
    Spec("apixo", ApixoProvider, "sim-apixo-key", "wan-2-5-t2v", "APIXO_API_KEY",
         empty_accept={"code": 200, "message": "ok", "data": {}}, id_field="taskId",
         first_poll=Processing(queued=True), invalid=APIXO_INVALID, delete_says="15 days"),
    Spec("acedata", AceDataProvider, "sim-acedata-token", "wan2.6-t2v", "ACEDATA_API_TOKEN",
         empty_accept={"success": True}, id_field="task_id", first_poll=Processing(),
         invalid=ACEDATA_INVALID, delete_says="CDN copy stays"),
]
BY_NAME = {spec.name: spec for spec in SPECS}
ALL = pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
STATIC = pytest.mark.parametrize("spec", [s for s in SPECS if s.static_models],
                                 ids=[s.name for s in SPECS if s.static_models])


# ---------------------------------------------------------------- simulator plumbing


@pytest.fixture
async def sim(make_clocked_sim):
    return await make_clocked_sim()


@pytest.fixture
async def connect():
    providers: list[Provider] = []

    def make(spec: Spec, server: SimServer, key: str | None = None, **kw) -> Provider:
        provider = spec.cls(server.url(spec.name), key or spec.sim_key, **kw)
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        await provider.aclose()


async def submitted(provider: Provider, request: JobRequest) -> Job:
    sub = await provider.submit(request)
    return Job(1, request, JobState.QUEUED, 0.0, 0.0, remote_id=sub.remote_id,
               result_url=sub.result_url)


async def fetch(provider: Provider, job: Job, ready: Ready) -> bytes:
    """The video a Ready outcome points at: its open stream, or a fresh download."""
    stream = ready.stream or await provider.open_download(job.with_(result_url=ready.url))
    try:
        return b"".join([chunk async for chunk in stream.iter_bytes()])
    finally:
        await stream.aclose()


# ---------------------------------------------------------------- the simulator round trip


@ALL
async def test_sim_success_to_byte_exact_download(spec, sim, connect):
    provider = connect(spec, sim)
    job = await submitted(provider, spec.req())
    first = await provider.poll(job)
    assert isinstance(first, Processing)
    if spec.first_poll is not None:
        assert first == spec.first_poll
    sim.clock.advance(60)
    ready = await provider.poll(job)
    assert isinstance(ready, Ready)
    if ready.url is not None:
        assert ready.url.startswith(sim.base)
    data = await fetch(provider, job, ready)
    remote = sim.state.job(job.remote_id)
    assert data == remote.video_path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == remote.sha256


@ALL
async def test_sim_unknown_task_is_gone(spec, sim, connect):
    assert isinstance(await connect(spec, sim).poll(spec.job("no-such-task")), Gone)


@pytest.mark.parametrize("how", ["trigger", "fault"])
@STATIC
async def test_sim_expired_result_url_is_not_found(spec, make_clocked_sim, connect, how):
    sim = await make_clocked_sim(rate_404=1.0 if how == "fault" else 0.0)
    provider = connect(spec, sim)
    job = await submitted(provider, spec.req("fox [sim:expire]" if how == "trigger" else "fox"))
    sim.clock.advance(60)
    ready = await provider.poll(job)
    assert isinstance(ready, Ready) and ready.url
    with pytest.raises(NotFound):
        await provider.open_download(job.with_(result_url=ready.url))


INVALID = [pytest.param(BY_NAME[spec.name], bad.values[0], id=f"{spec.name}-{bad.id}")
           for spec in SPECS for bad in spec.invalid]


@pytest.mark.parametrize(("spec", "bad"), INVALID)
async def test_sim_sees_nothing_of_invalid_requests(spec, bad, sim, connect):
    provider = connect(spec, sim)
    for call in (provider.submit, provider.quote):
        with pytest.raises(InvalidRequest) as info:
            await call(bad)
        assert info.value.sent is False
        assert isinstance(info.value, LocalRefusal)  # typed: a form knows nothing was asked
    assert sim.state.stats()["requests"] == 0


@ALL
async def test_every_model_option_is_described_for_forms(spec):
    provider = spec.cls("https://api.contract.test/v1", KEY)
    described = provider.info().options
    if spec.static_models:
        for caps in await provider.list_models():
            assert set(caps.options) <= set(described), caps.id
    for option in described.values():
        assert option.kind in ("bool", "choice", "list", "text")
        assert bool(option.choices) == (option.kind == "choice")
    await provider.aclose()


# ---------------------------------------------------------------- refusals from the simulator


@ALL
async def test_sim_wrong_key_is_auth_error_and_not_charged(spec, sim, connect):
    with pytest.raises(AuthError) as info:
        await connect(spec, sim, key="wrong").submit(spec.req())
    assert info.value.sent is False and "wrong" not in str(info.value)
    assert sim.state.queue_calls == [(None, False, 401)]


@ALL
async def test_sim_short_balance_is_insufficient_balance(spec, make_clocked_sim, connect):
    sim = await make_clocked_sim(balance_usd=0.01)
    with pytest.raises(InsufficientBalance) as info:
        await connect(spec, sim).submit(spec.req())
    assert info.value.sent is False
    assert sim.state.queue_calls == [(None, False, 402)]


@ALL
async def test_sim_429_is_rate_limited_with_retry_after(spec, make_clocked_sim, connect):
    sim = await make_clocked_sim(rate_429=1.0)
    with pytest.raises(RateLimited) as info:
        await connect(spec, sim).submit(spec.req())
    assert info.value.retry_after and info.value.sent is False
    assert sim.state.queue_calls == [(None, False, 429)]


@pytest.mark.parametrize("fault", ["rate_500", "rate_503"])
@ALL
async def test_sim_status_faults_are_server_errors(spec, make_clocked_sim, connect, fault):
    sim = await make_clocked_sim(**{fault: 1.0})
    provider = connect(spec, sim)
    job = await submitted(provider, spec.req())
    with pytest.raises(ServerError) as info:
        await provider.poll(job)
    assert info.value.retryable


@ALL
async def test_sim_slow_submit_times_out_as_maybe_charged(spec, make_clocked_sim, connect):
    sim = await make_clocked_sim(slow_s=0.5)
    with pytest.raises(NetworkError) as info:
        await connect(spec, sim, policy=HttpPolicy(deadline_s=0.1)).submit(spec.req())
    assert info.value.sent is True
    # The server may read the request after the client gave up on it.
    await eventually(lambda: sim.state.queue_calls)
    assert [charged for _, charged, _ in sim.state.queue_calls] == [True]


# ---------------------------------------------------------------- answers no simulator gives


@ALL
async def test_submit_accepted_without_an_id_is_bad_answer_and_maybe_charged(spec):
    provider = spec.mock(lambda r: httpx.Response(200, json=spec.empty_accept))
    with pytest.raises(BadAnswer, match=spec.id_field) as info:
        await provider.submit(spec.req())
    assert info.value.sent  # accepted with 200: may have been charged
    await provider.aclose()


@ALL
async def test_status_not_json_is_bad_answer(spec):
    provider = spec.mock(lambda r: httpx.Response(200, text="<html>gateway</html>"))
    with pytest.raises(BadAnswer):
        await provider.poll(spec.job())
    await provider.aclose()


@pytest.mark.parametrize("status", [403, 404])
@ALL
async def test_result_url_download_sends_no_key(spec, status):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, text="AccessDenied")

    provider = spec.mock(handler)
    expected = NotFound if status in spec.gone_on_result_url else Forbidden
    with pytest.raises(expected):
        await provider.open_download(spec.job(result_url="https://cdn.test/v.mp4"))
    assert len(seen) == 1 and "authorization" not in seen[0].headers
    await provider.aclose()


@ALL
async def test_api_calls_carry_the_key_and_it_never_shows(spec):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"error": "bad key"})

    provider = spec.mock(handler)
    with pytest.raises(AuthError) as info:
        await provider.submit(spec.req())
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in str(info.value) and KEY not in repr(info.value.detail)
    assert KEY not in repr(provider)
    await provider.aclose()


@ALL
async def test_not_configured_refuses_every_network_method(spec):
    provider = spec.mock(lambda r: pytest.fail("no request without a key"), key=None)
    assert not provider.configured
    if spec.static_models:
        assert await provider.list_models()  # static: no network
    for call in (
        provider.submit(spec.req()),
        provider.quote(spec.req()),
        provider.poll(spec.job()),
        provider.open_download(spec.job(result_url="https://cdn.test/v.mp4")),
    ):
        with pytest.raises(NotConfigured, match=spec.key_env):
            await call
    out = await provider.poll_many([spec.job()])
    assert isinstance(out[1], NotConfigured)
    await provider.aclose()


@ALL
async def test_delete_is_supported_or_refused_with_the_reason(spec):
    provider = spec.cls("https://api.contract.test/v1", KEY)
    assert provider.can_delete is spec.can_delete is provider.info().can_delete
    if not spec.can_delete:
        with pytest.raises(Unsupported, match=spec.delete_says):
            await provider.delete(spec.job())
    await provider.aclose()


@STATIC
async def test_quote_without_an_endpoint_is_a_labelled_estimate(spec):
    provider = spec.mock(lambda r: pytest.fail("no quote endpoint: no request"))
    quote = await provider.quote(spec.req())
    assert quote.estimate and quote.usd > 0 and "estimate" in quote.label()
    await provider.aclose()


@ALL
async def test_key_never_reaches_the_logs(spec, sim, connect, caplog):
    """httpx and httpcore log every request at DEBUG; none of it may carry the key."""
    caplog.set_level(logging.DEBUG)
    provider = connect(spec, sim)
    job = await submitted(provider, spec.req())
    await provider.poll(job)
    with pytest.raises(AuthError):
        await connect(spec, sim, key=spec.sim_key + "-wrong").submit(spec.req())
    assert any(r.name.startswith(("httpx", "httpcore")) for r in caplog.records)
    assert spec.sim_key not in caplog.text
