"""Hostile servers on loopback: redirects, crawling bodies, lying headers (issue #8.1).

What must hold whatever a server does: a POST is sent once and never to another host, the key
never leaves the API's origin, no request outlives its deadline, a redirect never marks a paid
job expired, and every failure is one line of the provider error taxonomy.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from conftest import T2V, as_downloaded
from hostile import HostileServer, Seen, answer, crawl, redirect

from tui.jobs import Job, JobRequest, JobState
from tui.providers.acedata import AceDataProvider
from tui.providers.apixo import ApixoProvider
from tui.providers.base import (
    BadAnswer,
    Gone,
    NetworkError,
    NotFound,
    ProviderError,
    Ready,
    Redirected,
    TooSlow,
)
from tui.providers.http import HttpPolicy
from tui.providers.venice import VeniceProvider

KEY = "sk-hostile-secret-42"
API = "/api/v1"
# Short enough that a test never waits long, long enough for a loaded 2-core machine.
SHORT = HttpPolicy(deadline_s=0.5, connect_s=2.0, min_rate_bps=1024, slow_window_s=0.3)
MODELS = {"data": [{"id": T2V, "type": "video", "model_spec": {"constraints": {
    "model_type": "text-to-video", "durations": ["5s"]}}}]}


def req(**kw) -> JobRequest:
    kw.setdefault("model", T2V)
    return JobRequest(prompt="a red fox", duration="5s", **kw)


def job(remote_id: str = "q1", model: str = T2V, **kw) -> Job:
    return Job(1, req(model=model), JobState.PROCESSING, 0.0, 0.0, remote_id=remote_id, **kw)


def one_line(err: ProviderError) -> str:
    text = str(err)
    assert text and "\n" not in text and KEY not in text and "Traceback" not in text
    return text


@pytest.fixture
async def serve():
    """Start hostile servers: `await serve(handler, host=...)`; all stopped afterwards."""
    servers: list[HostileServer] = []
    providers: list = []

    async def start(handler, host: str = "127.0.0.1") -> HostileServer:
        server = await HostileServer(handler, host=host).start()
        servers.append(server)
        return server

    start.providers = providers
    yield start
    for provider in providers:
        await provider.aclose()
    for server in servers:
        await server.stop()


def venice(serve, server: HostileServer, policy: HttpPolicy | None = None) -> VeniceProvider:
    provider = VeniceProvider(server.url(API), KEY, policy=policy)
    serve.providers.append(provider)
    return provider


def always(raw: bytes):
    async def handler(seen: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
    return handler


async def elsewhere(serve) -> HostileServer:
    """Another loopback host (and port) that records what reaches it and answers 200."""
    return await serve(always(answer(200, json.dumps(MODELS))), host="127.0.0.2")


# ---------------------------------------------------------------- redirects on POST

POSTS = {
    "submit": (lambda p: p.submit(req()), f"{API}/video/queue"),
    "quote": (lambda p: p.quote(req()), f"{API}/video/quote"),
    "retrieve": (lambda p: p.poll(job()), f"{API}/video/retrieve"),
    "download": (lambda p: p.open_download(job()), f"{API}/video/retrieve"),
    "complete": (lambda p: p.delete(job()), f"{API}/video/complete"),
}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("call", list(POSTS))
async def test_post_redirect_loop_is_sent_once_and_never_followed(serve, call, status):
    async def loop(seen: Seen, writer) -> None:
        writer.write(redirect(status, seen.path))  # to itself, forever

    server = await serve(loop)
    method, path = POSTS[call]
    with pytest.raises(Redirected) as info:
        await method(venice(serve, server))
    assert not isinstance(info.value, NotFound)  # a redirect never says "expired"
    assert info.value.sent is True  # a paid submit may have reached the server: `unknown`
    assert f"HTTP {status}" in one_line(info.value)
    assert [(s.method, s.path) for s in server.seen] == [("POST", path)]


@pytest.mark.parametrize("call", list(POSTS))
async def test_post_redirect_to_another_host_sends_it_nothing(serve, call):
    other = await elsewhere(serve)

    async def away(seen: Seen, writer) -> None:
        writer.write(redirect(307, other.url(seen.path)))

    server = await serve(away)
    method, _ = POSTS[call]
    with pytest.raises(Redirected) as info:
        await method(venice(serve, server))
    assert other.base.split("//")[1] in one_line(info.value)  # names the host, not the path
    assert other.seen == []
    assert len(server.seen) == 1


async def test_apixo_and_acedata_submits_are_not_redirected(serve):
    other = await elsewhere(serve)

    async def away(seen: Seen, writer) -> None:
        writer.write(redirect(302, other.url(seen.path)))

    server = await serve(away)
    apixo = ApixoProvider(server.url(API), KEY)
    acedata = AceDataProvider(server.url(API), KEY)
    serve.providers.extend([apixo, acedata])
    for call in (apixo.submit(req(model="wan-2-5-t2v")), acedata.submit(req(model="wan2.6-t2v")),
                 acedata.poll(job())):
        with pytest.raises(Redirected) as info:
            await call
        assert info.value.sent is True
        one_line(info.value)
    assert other.seen == []
    assert [s.method for s in server.seen] == ["POST"] * 3


# ---------------------------------------------------------------- redirects on GET


async def test_get_redirect_loop_is_bounded(serve):
    async def loop(seen: Seen, writer) -> None:
        writer.write(redirect(302, seen.path))

    server = await serve(loop)
    policy = HttpPolicy(max_redirects=2)
    with pytest.raises(Redirected) as info:
        await venice(serve, server, policy).list_models()
    one_line(info.value)
    assert len(server.requests("GET")) == 1 + policy.max_redirects


async def test_get_redirect_to_another_host_carries_no_key(serve):
    other = await elsewhere(serve)

    async def away(seen: Seen, writer) -> None:
        writer.write(redirect(302, other.url(seen.path)))

    server = await serve(away)
    models = await venice(serve, server).list_models()
    assert [m.id for m in models] == [T2V]
    assert server.seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert [s.method for s in other.seen] == ["GET"]
    assert "authorization" not in other.seen[0].headers


async def test_apixo_status_redirect_to_another_host_carries_no_key(serve):
    async def envelope(seen: Seen, writer) -> None:
        body = {"code": 200, "message": "ok", "data": {"taskId": "t", "state": "processing"}}
        writer.write(answer(200, json.dumps(body)))

    other = await serve(envelope, host="127.0.0.2")

    async def away(seen: Seen, writer) -> None:
        writer.write(redirect(307, other.url(seen.path)))

    server = await serve(away)
    provider = ApixoProvider(server.url(API), KEY)
    serve.providers.append(provider)
    await provider.poll(job(model="wan-2-5-t2v"))
    assert server.seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in other.seen[0].headers


async def test_result_url_gets_no_key_even_on_the_api_host_nor_after_a_hop(serve):
    other = await serve(always(answer(200, b"\0\0\0\x08mdat", ctype="video/mp4")),
                        host="127.0.0.2")

    async def hop(seen: Seen, writer) -> None:
        writer.write(redirect(302, other.url("/v.mp4")))

    server = await serve(hop)
    stream = await venice(serve, server).open_download(job(result_url=server.url("/r.mp4")))
    assert b"".join([c async for c in stream.iter_bytes()]) == b"\0\0\0\x08mdat"
    await stream.aclose()
    assert all("authorization" not in s.headers for s in server.seen + other.seen)


# ---------------------------------------------------------------- deadlines and crawling


async def test_json_answer_that_crawls_ends_at_the_deadline(serve):
    body = json.dumps(MODELS).encode() * 50

    async def slow(seen: Seen, writer) -> None:
        head = answer(200, b"", length=len(body))
        await crawl(writer, head, body, 0.05)

    server = await serve(slow)
    provider = venice(serve, server, SHORT)
    with pytest.raises(NetworkError) as info:
        await provider.list_models()
    assert "within 0.5s" in one_line(info.value)
    with pytest.raises(NetworkError) as info:  # the paid call: may have been charged
        await provider.submit(req())
    assert info.value.sent is True
    assert len(server.requests("POST")) == 1


async def test_headers_that_never_come_end_at_the_deadline(serve):
    async def silent(seen: Seen, writer) -> None:
        await asyncio.sleep(3600)

    server = await serve(silent)
    with pytest.raises(NetworkError) as info:
        await venice(serve, server, SHORT).submit(req())
    assert info.value.sent is True and "within" in one_line(info.value)
    assert len(server.requests("POST")) == 1


async def test_submit_waiting_for_a_connection_ends_as_certainly_not_sent(serve):
    """Every pooled connection hangs on a silent server: a submit that never got one must
    end before the deadline as not sent (safe to retry), not as "maybe charged"."""
    async def silent(seen: Seen, writer) -> None:
        await asyncio.sleep(3600)

    server = await serve(silent)
    provider = venice(serve, server, HttpPolicy(deadline_s=30.0, connect_s=0.3))
    hung = [asyncio.ensure_future(provider.quote(req())) for _ in range(64)]
    while len(server.seen) < 64:
        await asyncio.sleep(0.01)
    with pytest.raises(NetworkError) as info:
        await provider.submit(req())
    assert info.value.sent is False and "connecting" in one_line(info.value)
    assert server.requests("POST", f"{API}/video/queue") == []
    for task in hung:
        task.cancel()
    await asyncio.gather(*hung, return_exceptions=True)


@pytest.mark.parametrize("gap_s", [0.05, 3600.0], ids=["one-byte-at-a-time", "stalled"])
async def test_video_body_that_crawls_is_too_slow_and_retryable(serve, gap_s):
    video = b"\0" * 100_000

    async def slow(seen: Seen, writer) -> None:
        await crawl(writer, answer(200, b"", ctype="video/mp4", length=len(video)), video, gap_s)

    server = await serve(slow)
    outcome = await venice(serve, server, SHORT).poll(job())
    assert isinstance(outcome, Ready) and outcome.stream is not None
    got = 0
    with pytest.raises(TooSlow) as info:
        async for chunk in outcome.stream.iter_bytes():
            got += len(chunk)
    await outcome.stream.aclose()
    assert info.value.retryable and isinstance(info.value, NetworkError)
    assert got < len(video)
    assert "B/s" in one_line(info.value)


# ---------------------------------------------------------------- malformed answers

HTML = "<html><body>Please log in</body></html>"


@pytest.mark.parametrize("call", ["quote", "submit", "retrieve", "models"])
async def test_html_with_200_is_a_bad_answer(serve, call):
    server = await serve(always(answer(200, HTML, ctype="text/html")))
    provider = venice(serve, server)
    method = {"quote": lambda: provider.quote(req()), "submit": lambda: provider.submit(req()),
              "retrieve": lambda: provider.poll(job()), "models": provider.list_models}[call]
    with pytest.raises(BadAnswer) as info:
        await method()
    assert "text/html" in one_line(info.value)
    if call == "submit":
        assert info.value.sent is True  # accepted with 200: maybe charged


async def test_html_with_200_on_apixo_and_acedata(serve):
    server = await serve(always(answer(200, HTML, ctype="text/html")))
    apixo, acedata = ApixoProvider(server.url(API), KEY), AceDataProvider(server.url(API), KEY)
    serve.providers.extend([apixo, acedata])
    for call in (apixo.poll(job(model="wan-2-5-t2v")),
                 acedata.poll(job()), acedata.submit(req(model="wan2.6-t2v"))):
        with pytest.raises(BadAnswer) as info:
            await call
        one_line(info.value)


@pytest.mark.parametrize(("ctype", "body"), [
    ("text/html", HTML),
    ("application/json", '{"error": "not a video"}'),
    ("text/plain", "Access denied"),
])
async def test_result_url_with_a_page_instead_of_a_video(serve, ctype, body):
    server = await serve(always(answer(200, body, ctype=ctype)))
    with pytest.raises(BadAnswer) as info:
        await venice(serve, server).open_download(job(result_url=server.url("/v.mp4")))
    assert "not a video" in one_line(info.value) and ctype in str(info.value)


@pytest.mark.parametrize(("ctype", "body"), [
    ("application/xml", "<quote>1.5</quote>"),
    ("application/json", HTML),
    ("application/json", "[1.5]"),
])
async def test_wrong_content_or_shape_on_quote(serve, ctype, body):
    server = await serve(always(answer(200, body, ctype=ctype)))
    with pytest.raises(BadAnswer) as info:
        await venice(serve, server).quote(req())
    one_line(info.value)


async def test_huge_headers_are_refused(serve):
    big = {f"X-Filler-{i}": "y" * 1000 for i in range(300)}  # ~300 KB of headers
    server = await serve(always(answer(200, '{"queue_id": "q1"}', headers=big)))
    with pytest.raises(NetworkError) as info:
        await venice(serve, server).submit(req())
    assert info.value.sent is True and "protocol" in one_line(info.value)
    assert len(server.requests("POST")) == 1


async def test_body_longer_than_content_length(serve):
    body = '{"quote": 1.5, "note": "and then some"}'

    async def liar(seen: Seen, writer) -> None:
        writer.write(answer(200, body, length=len('{"quote": 1.5')))

    server = await serve(liar)
    with pytest.raises(BadAnswer) as info:  # only the declared bytes count: cut JSON
        await venice(serve, server).quote(req())
    assert "not JSON" in one_line(info.value)


async def test_bytes_past_content_length_never_answer_the_next_request(serve):
    """A body longer than declared must not desync the connection: the extra bytes (here a
    whole smuggled answer) would otherwise be read as the answer to the next request."""
    smuggled = answer(200, '{"queue_id": "someone-elses-job"}').decode()

    async def handler(seen: Seen, writer) -> None:
        if seen.path.endswith("/video/quote"):
            writer.write(answer(200, '{"quote": 1.5}' + smuggled, length=14))
        else:
            writer.write(answer(200, '{"queue_id": "q-mine"}'))

    server = await serve(handler)
    provider = venice(serve, server)
    assert (await provider.quote(req())).usd == 1.5
    assert (await provider.submit(req())).remote_id == "q-mine"
    assert len(server.requests("POST", f"{API}/video/queue")) == 1


# ---------------------------------------------------------------- kept connections


async def test_connections_are_kept_between_answers(serve):
    server = await serve(always(answer(200, '{"quote": 1.5}')))
    provider = venice(serve, server)
    for _ in range(5):
        assert (await provider.quote(req())).usd == 1.5
    assert len(server.seen) == 5 and server.connections == 1


async def test_bytes_past_content_length_close_the_connection(serve):
    """Two quotes on one connection: the first answer carries a whole smuggled answer past its
    declared length; the second quote must get its own answer, on a new connection."""
    smuggled = answer(200, '{"quote": 999}').decode()
    calls = 0

    async def handler(seen: Seen, writer) -> None:
        nonlocal calls
        calls += 1
        body = '{"quote": 1.5}'
        writer.write(answer(200, body + smuggled if calls == 1 else '{"quote": 2.5}',
                            length=len(body) if calls == 1 else None))

    server = await serve(handler)
    provider = venice(serve, server)
    assert (await provider.quote(req())).usd == 1.5
    assert (await provider.quote(req())).usd == 2.5
    assert server.connections == 2


async def test_bytes_that_come_late_close_the_idle_connection(serve):
    """Extra bytes that arrive after the answer, while the connection waits idle, mark it
    unusable: the next request goes on a new connection."""
    calls = 0

    async def handler(seen: Seen, writer) -> None:
        nonlocal calls
        calls += 1
        writer.write(answer(200, f'{{"queue_id": "q{calls}"}}'))
        if calls == 1:
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(answer(200, '{"queue_id": "someone-elses-job"}'))

    server = await serve(handler)
    provider = venice(serve, server)
    assert (await provider.submit(req())).remote_id == "q1"
    await asyncio.sleep(0.3)
    assert (await provider.submit(req())).remote_id == "q2"
    assert server.connections == 2
    assert len(server.requests("POST", f"{API}/video/queue")) == 2


async def test_a_video_left_half_read_is_never_reused(serve):
    video = b"\0" * 200_000

    async def handler(seen: Seen, writer) -> None:
        if seen.path.endswith("/video/retrieve"):
            writer.write(answer(200, video, ctype="video/mp4"))
        else:
            writer.write(answer(200, '{"quote": 1.5}'))

    server = await serve(handler)
    provider = venice(serve, server)
    outcome = await provider.poll(job())
    assert isinstance(outcome, Ready) and outcome.stream is not None
    async for _chunk in outcome.stream.iter_bytes():
        break  # abandon the body after its first chunk
    await outcome.stream.aclose()
    assert (await provider.quote(req())).usd == 1.5
    assert server.connections == 2


async def test_undecodable_gzip_is_a_bad_answer(serve):
    server = await serve(always(answer(200, b"not gzip at all", headers={
        "Content-Encoding": "gzip"})))
    with pytest.raises(BadAnswer) as info:
        await venice(serve, server).quote(req())
    assert "decoded" in one_line(info.value)


async def test_unusable_result_url_is_one_line_and_not_sent(serve):
    server = await serve(always(answer(200)))
    provider = venice(serve, server)
    for url in ("ftp://cdn.test/v.mp4", "http://[::zz]/v.mp4"):
        with pytest.raises(NetworkError) as info:
            await provider.open_download(job(result_url=url))
        assert info.value.sent is False
        one_line(info.value)
    assert server.seen == []


# ---------------------------------------------------------------- the engine


async def test_engine_redirected_submit_is_unknown_and_never_resent(serve, make_engine):
    async def loop(seen: Seen, writer) -> None:
        writer.write(redirect(307, seen.path))

    server = await serve(loop)
    engine = await make_engine(None, providers={"venice": venice(serve, server)})
    await engine.start(resume=False)
    [added] = await engine.add([req()], [0.5])
    await asyncio.wait_for(engine.wait_idle(), 60)
    assert (await engine.get(added.id)).state == JobState.UNKNOWN
    assert len(server.requests("POST", f"{API}/video/queue")) == 1


async def test_engine_redirected_retrieve_never_expires_a_paid_job(serve, make_engine):
    polled = asyncio.Event()

    async def handler(seen: Seen, writer) -> None:
        if seen.path.endswith("/video/queue"):
            writer.write(answer(200, '{"queue_id": "q1"}'))
        elif seen.path.endswith("/video/retrieve"):
            if len(server.requests("POST", f"{API}/video/retrieve")) >= 3:
                polled.set()
            writer.write(redirect(302, "/gone"))
        else:
            writer.write(answer(404, '{"error": "gone"}'))

    server = await serve(handler)
    engine = await make_engine(None, providers={"venice": venice(serve, server)})
    await engine.start(resume=False)
    [added] = await engine.add([req()], [0.5])
    await asyncio.wait_for(polled.wait(), 60)
    await engine.stop(grace_s=5)
    stored = await engine.get(added.id)
    assert stored.state in (JobState.QUEUED, JobState.PROCESSING)  # still followed
    assert stored.remote_id == "q1"
    assert server.requests(path="/gone") == []
    assert len(server.requests("POST", f"{API}/video/queue")) == 1


async def test_engine_retries_a_crawling_download_then_saves_it(serve, make_engine, tmp_path):
    from tui.sim.video import render_clip

    size, sha = render_clip(tmp_path / "clip.mp4", prompt="fox", job_id="q1", seconds=0.2)
    video = (tmp_path / "clip.mp4").read_bytes()

    async def handler(seen: Seen, writer) -> None:
        if seen.path.endswith("/video/queue"):
            writer.write(answer(200, '{"queue_id": "q1"}'))
            return
        head = answer(200, b"", ctype="video/mp4", length=size)
        if len(server.requests("POST", f"{API}/video/retrieve")) == 1:
            await crawl(writer, head, video, 3600.0)  # first answer: one byte, then nothing
        else:
            writer.write(head + video)

    server = await serve(handler)
    engine = await make_engine(None, providers={"venice": venice(serve, server, SHORT)})
    await engine.start(resume=False)
    [added] = await engine.add([req()], [0.5])
    await asyncio.wait_for(engine.wait_idle(), 60)
    done = await engine.get(added.id)
    assert done.state == JobState.DONE and as_downloaded(done.file) == sha
    events = [e.detail for e in await engine.store.events(added.id)]
    assert any("download attempt 1 failed" in e and "B/s" in e for e in events), events
    assert len(server.requests("POST", f"{API}/video/queue")) == 1


# ---------------------------------------------------------------- the CLI, a real process


async def test_cli_models_redirect_loop_is_one_line_without_traceback(serve, tmp_path):
    async def loop(seen: Seen, writer) -> None:
        writer.write(redirect(307, seen.path))

    server = await serve(loop)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VENICE_", "APIXO_",
                                                                     "ACEDATA_", "WAN_TUI_"))}
    env.update(WAN_TUI_HOME=str(tmp_path / "home"), VENICE_BASE_URL=server.url(API),
               VENICE_API_KEY=KEY)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())",
        "models", "--provider", "venice", "--refresh", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == 1, text
    assert "Traceback" not in text and KEY not in text
    assert len([line for line in text.splitlines() if line.strip()]) == 1, text
    assert "redirect" in text
    assert 1 <= len(server.requests("GET")) <= 1 + HttpPolicy().max_redirects


async def test_gone_is_still_gone(serve):
    """The control: a plain 404 on retrieve still means expired (Gone), unlike a redirect."""
    server = await serve(always(answer(404, '{"error": "media not found"}')))
    assert isinstance(await venice(serve, server).poll(job()), Gone)
