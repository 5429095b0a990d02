"""Venice's published contract: what the adapter sends and what the simulator answers, both
checked against the OpenAPI document Venice publishes (issue #20).

The document is vendored whole and unchanged in tests/contracts/ (so the repository needs
nothing outside it, and there is no trimmed copy that could drift from the original); the
adapter names the version it follows (`CONTRACT_VERSION`). A body the schema refuses fails
here, whichever side drifted.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi import component, document, errors, request_schema, response_schema

from tui.jobs import Job, JobRequest, JobState
from tui.providers.venice import (
    CONTRACT_VERSION,
    VeniceProvider,
    complete_body,
    queue_body,
    quote_body,
    retrieve_body,
)
from tui.sim.venice import CATALOGUE, SimModel

KEY = "sim-venice-key"
QUEUE = request_schema("/video/queue")
QUOTE = request_schema("/video/quote")
RETRIEVE = request_schema("/video/retrieve")
COMPLETE = request_schema("/video/complete")
IMAGE = "data:image/png;base64,iVBORw0KGgo="


def test_the_vendored_document_is_the_version_the_adapter_follows():
    info = document()["info"]
    assert info["version"] == CONTRACT_VERSION
    assert document()["x-venice-forge-provenance"]["content_version"] == CONTRACT_VERSION


# ---------------------------------------------------------------- what the adapter sends


@st.composite
def requests(draw) -> JobRequest:
    """Any request the form or a batch file can make for a model of the simulator's
    catalogue (the catalogue has each model shape: text-, image- and any-to-video)."""
    model: SimModel = draw(st.sampled_from([m for m in CATALOGUE if not m.offline]))
    maybe = lambda values: st.none() | st.sampled_from(values)  # noqa: E731
    image = model.model_type in ("image-to-video", "video")
    return JobRequest(
        model=model.id,
        prompt=draw(st.text(min_size=1, max_size=model.prompt_limit).filter(str.strip)),
        duration=draw(st.sampled_from(model.durations)),
        resolution=draw(maybe(model.resolutions)) if model.resolutions else None,
        aspect_ratio=draw(maybe(model.aspect_ratios)) if model.aspect_ratios else None,
        negative_prompt=draw(st.none() | st.text(min_size=1, max_size=200)),
        audio=draw(st.none() | st.booleans()) if model.audio_configurable else None,
        image_url=draw(st.sampled_from([IMAGE, "https://example.com/a.png"]))
        if image and (model.model_type == "image-to-video" or draw(st.booleans())) else None,
    )


@settings(max_examples=300, deadline=None)
@given(requests())
def test_every_queue_and_quote_body_the_adapter_builds_passes(req):
    assert errors(QUEUE, queue_body(req)) == []
    assert errors(QUOTE, quote_body(req)) == []


@pytest.mark.parametrize("model", [m for m in CATALOGUE if not m.offline], ids=lambda m: m.id)
def test_each_field_alone_passes_for_each_model(model: SimModel):
    base = {"model": model.id, "prompt": "a heron in the rain", "duration": model.durations[0]}
    variants = [JobRequest(**base)]
    variants += [JobRequest(**base, resolution=r) for r in model.resolutions]
    variants += [JobRequest(**base, aspect_ratio=a) for a in model.aspect_ratios]
    variants += [JobRequest(**base, audio=b) for b in (True, False)]
    variants += [JobRequest(**base, negative_prompt="blurry"), JobRequest(**base,
                                                                           image_url=IMAGE)]
    variants += [JobRequest(**{**base, "duration": d}) for d in model.durations]
    for req in variants:
        assert errors(QUEUE, queue_body(req)) == [], req
        assert errors(QUOTE, quote_body(req)) == [], req


def test_retrieve_and_complete_bodies_pass():
    job = Job(1, JobRequest(model="wan-2-7-text-to-video", prompt="x"), JobState.PROCESSING,
              0.0, 0.0, remote_id="123e4567-e89b-12d3-a456-426614174000")
    assert errors(RETRIEVE, retrieve_body(job)) == []
    assert errors(COMPLETE, complete_body(job)) == []


@pytest.mark.parametrize("schema,body,why", [
    (QUEUE, {"model": "m", "prompt": "p"}, "duration"),
    (QUEUE, {"model": "m", "prompt": "p", "duration": "5"}, "duration"),
    (QUEUE, {"model": "m", "prompt": "p", "duration": 5}, "duration"),
    (QUEUE, {"model": "m", "prompt": "", "duration": "5s"}, "prompt"),
    (QUEUE, {"model": "m", "prompt": "p" * 20_001, "duration": "5s"}, "prompt"),
    (QUEUE, {"model": "m", "prompt": "p", "duration": "5s", "aspect_ratio": "16:10"},
     "aspect_ratio"),
    (QUEUE, {"model": "m", "prompt": "p", "duration": "5s", "audio": "yes"}, "audio"),
    (QUOTE, {"model": "m"}, "duration"),
    (RETRIEVE, {"model": "m", "queue_id": "q", "delete": True}, "Additional properties"),
    (COMPLETE, {"model": "m"}, "queue_id"),
], ids=["no-duration", "duration-without-s", "duration-number", "empty-prompt",
        "prompt-too-long", "unknown-aspect", "audio-string", "quote-no-duration",
        "retrieve-extra-field", "complete-no-id"])
def test_a_body_the_schema_refuses_fails(schema, body, why):
    found = errors(schema, body)
    assert found and any(why in line for line in found), found


def test_an_adapter_body_that_drifted_would_fail():
    """The same check, on a body of the adapter's altered the way a regression would: a
    duration as a number (APIXO's spelling) and an aspect ratio read by YAML 1.1 (969)."""
    body = queue_body(JobRequest(model="wan-2-7-text-to-video", prompt="x", duration="5s",
                                 aspect_ratio="16:9"))
    assert errors(QUEUE, body) == []
    assert errors(QUEUE, {**body, "duration": 5}) != []
    assert errors(QUEUE, {**body, "aspect_ratio": 969}) != []


# ---------------------------------------------------------------- what the simulator answers


@pytest.fixture
async def venice(make_clocked_sim):
    sim = await make_clocked_sim()
    client = httpx.AsyncClient(base_url=sim.url("venice"),
                               headers={"Authorization": f"Bearer {KEY}"})
    yield sim, client
    await client.aclose()


def check(path: str, answer: httpx.Response, method: str = "post") -> None:
    found = errors(response_schema(path, answer.status_code, method), answer.json())
    assert found == [], (path, answer.status_code, found)


T2V = {"model": "wan-2.5-preview-text-to-video", "prompt": "a fox", "duration": "5s"}


async def test_models_answer_matches(venice):
    sim, client = venice
    answer = await client.get("/models", params={"type": "video"})
    check("/models", answer, "get")
    assert {m["id"] for m in answer.json()["data"]} >= {m.id for m in CATALOGUE}


async def test_quote_queue_retrieve_complete_answers_match(venice):
    sim, client = venice
    check("/video/quote", await client.post("/video/quote", json=T2V))
    queued = await client.post("/video/queue", json=T2V)
    check("/video/queue", queued)
    ids = {"model": T2V["model"], "queue_id": queued.json()["queue_id"]}
    check("/video/retrieve", await client.post("/video/retrieve", json=ids))
    sim.clock.advance(3600)
    done = await client.post("/video/retrieve", json=ids)
    assert done.status_code == 200 and done.headers["content-type"] == "video/mp4"
    check("/video/complete", await client.post("/video/complete", json=ids))
    check("/video/retrieve", await client.post("/video/retrieve", json=ids))  # 404 now
    sora = {"model": "sora-2-text-to-video", "prompt": "a fox", "duration": "4s"}
    check("/video/queue", await client.post("/video/queue", json=sora))  # with download_url


async def test_error_answers_match(venice, make_clocked_sim):
    sim, client = venice
    check("/video/queue", await client.post("/video/queue", json={**T2V, "duration": "7s"}))
    policy = await client.post("/video/queue", json={**T2V, "prompt": "[sim:policy] x"})
    sim.clock.advance(3600)
    refused = await client.post("/video/retrieve", json={
        "model": T2V["model"], "queue_id": policy.json()["queue_id"]})
    assert refused.status_code == 422
    check("/video/retrieve", refused)
    consent = await client.post("/video/queue", json={
        "model": "seedance-2-0-text-to-video", "prompt": "a fox", "duration": "5s"})
    assert consent.status_code == 409
    check("/video/queue", consent)
    check("/video/queue", await client.post("/video/queue", json={**T2V, "image_url": "x" * (
        36 * 1024 * 1024)}))  # 413
    wrong = await client.post("/video/queue", json=T2V, headers={"Authorization": "Bearer no"})
    check("/video/queue", wrong)  # 401
    poor = await make_clocked_sim(balance_usd=0.0)
    async with httpx.AsyncClient(base_url=poor.url("venice"),
                                 headers={"Authorization": f"Bearer {KEY}"}) as broke:
        short = await broke.post("/video/queue", json=T2V)
        assert short.status_code == 402
        check("/video/queue", short)


async def test_billing_answers_match_and_the_ledger_walks_by_cursor(venice):
    sim, client = venice
    for i in range(23):
        assert (await client.post("/video/queue", json={**T2V, "prompt": f"fox {i}"})
                ).status_code == 200
    balance = await client.get("/billing/balance")
    check("/billing/balance", balance, "get")
    assert balance.json()["balances"]["usd"] == pytest.approx(sim.state.balance_usd)
    seen: list[dict] = []
    page = await client.get("/billing/usage-history", params={"pageSize": "10"})
    while True:
        check("/billing/usage-history", page, "get")
        seen += page.json()["data"]
        cursor = page.json()["nextCursor"]
        if cursor is None:
            break
        page = await client.get("/billing/usage-history", params={"cursor": cursor})
    assert len(seen) == 23 and [e["timestamp"] for e in seen] == sorted(
        e["timestamp"] for e in seen)
    queued = {c[0] for c in sim.state.queue_calls if c[1]}
    assert {e["inferenceDetails"]["requestId"] for e in seen} == queued
    cursor = base64.urlsafe_b64encode(b'{"start": null, "end": null, "size": "10", "at": 10}'
                                      ).decode().rstrip("=")
    mixed = await client.get("/billing/usage-history", params={"cursor": cursor,
                                                                "pageSize": "10"})
    assert mixed.status_code == 400  # the cursor carries its filters: sent alone


async def test_the_adapter_reads_balance_and_ledger(venice):
    sim, client = venice
    provider = VeniceProvider(sim.url("venice"), KEY)
    try:
        before = await provider.balance()
        sub = await provider.submit(JobRequest(model=T2V["model"], prompt="a fox"))
        after = await provider.balance()
        import time
        ledger = await provider.ledger(time.time() - 60, time.time() + 1)
    finally:
        await provider.aclose()
    assert before.can_consume and before.currency == "USD"
    assert after.usd == pytest.approx(before.usd - 0.25 * 1.25)
    assert [c.request_id for c in ledger.charges] == [sub.remote_id]
    assert ledger.charges[0].amount < 0 and ledger.charges[0].sku.startswith(T2V["model"])


def test_every_error_schema_the_adapter_reads_is_in_the_document():
    for name in ("StandardError", "DetailedError", "ContentViolationError",
                 "ProviderContentPolicyError", "PayloadTooLargeError",
                 "BillingBalanceResponse", "BillingUsageHistoryResponse"):
        assert component(name).schema


# ---------------------------------------------------------------- the other documented shapes


async def test_refusals_say_what_to_do_in_one_line(make_clocked_sim):
    from tui.providers.base import Failed, Forbidden

    sim = await make_clocked_sim()
    provider = VeniceProvider(sim.url("venice"), KEY)
    try:
        with pytest.raises(Forbidden) as consent:
            await provider.submit(JobRequest(model="seedance-2-0-text-to-video", prompt="x"))
        sub = await provider.submit(JobRequest(model=T2V["model"], prompt="[sim:policy] x"))
        sim.clock.advance(3600)
        outcome = await provider.poll(Job(1, JobRequest(model=T2V["model"], prompt="x"),
                                          JobState.PROCESSING, 0.0, 0.0,
                                          remote_id=sub.remote_id))
        models = {m.id: m for m in await provider.list_models()}
    finally:
        await provider.aclose()
    line = str(consent.value)
    assert consent.value.sent is False and "\n" not in line
    assert "seedance-2-0-text-to-video" in line and "consent" in line
    assert "https://docs.venice.ai/" in line
    assert isinstance(outcome, Failed) and outcome.refunded is True
    assert "credits refunded" in outcome.message and "wan-2-7-text-to-video" in outcome.message
    assert "hunyuan-video" not in models  # offline: not offered
    dep = models["wan-2.1-pro-text-to-video"].deprecation
    assert dep is not None and dep.auto_remap
    assert dep.warning("wan-2.1-pro-text-to-video") == (
        "wan-2.1-pro-text-to-video is deprecated (retired 2026-01-15); use "
        "wan-2.5-preview-text-to-video; Venice may run requests for it on "
        "wan-2.5-preview-text-to-video instead")


def test_the_cli_warns_before_submitting_a_deprecated_model(make_sim, monkeypatch, tmp_path,
                                                            capsys):
    from conftest import sim_env

    from tui.cli import main

    sim = make_sim(seed=4)
    for key, value in sim_env(sim, tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    code = main(["submit", "--model", "wan-2.1-pro-text-to-video", "--prompt", "an owl",
                 "--yes", "--wait"])
    err = capsys.readouterr().err
    assert code == 0, err
    warning = [line for line in err.splitlines() if "deprecated" in line]
    assert len(warning) == 1 and "wan-2.5-preview-text-to-video instead" in warning[0]
