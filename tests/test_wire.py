"""The wire as users have it: HTTPS with a certificate trusted through SSL_CERT_FILE, a
round trip between client and server, and connections kept across requests (issue #20).

The simulator counts the connections and TLS handshakes it accepts; these tests read them.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time

import httpx
import pytest
from conftest import T2V, VENICE_KEY

from tui.jobs import JobRequest, JobState
from tui.providers.base import NetworkError
from tui.providers.http import HttpPolicy
from tui.providers.venice import VeniceProvider


def req(i: int = 0) -> JobRequest:
    return JobRequest(model=T2V, prompt=f"a lighthouse at dusk {i}", duration="5s")


@pytest.fixture
def https_sim(make_sim, monkeypatch):
    """A simulator on HTTPS whose CA this process trusts (as a user's SSL_CERT_FILE would)."""
    def make(**config):
        sim = make_sim(tls=True, seed=3, **config)
        assert sim.base.startswith("https://") and sim.ca_file is not None
        monkeypatch.setenv("SSL_CERT_FILE", str(sim.ca_file))
        return sim
    return make


async def run_batch(make_engine, sim, n: int, policy: HttpPolicy | None = None):
    provider = VeniceProvider(sim.url("venice"), VENICE_KEY, policy=policy)
    engine = await make_engine(sim, providers={"venice": provider})
    await engine.start(resume=False)
    jobs = await engine.add([req(i) for i in range(n)])
    await engine.wait_idle()
    return [await engine.store.get(job.id) for job in jobs]


async def test_a_batch_of_40_over_https_opens_at_most_two_connections_per_job(
        https_sim, make_engine):
    sim = https_sim()
    jobs = await run_batch(make_engine, sim, 40)
    assert [job.state for job in jobs] == [JobState.DONE] * 40
    stats = sim.stats()
    assert stats["tls_handshakes"] == stats["connections"] > 0
    assert stats["connections"] / 40 <= 2
    assert stats["requests"] > stats["connections"]  # requests really shared connections


async def test_without_keepalive_every_request_pays_its_own_handshake(https_sim, make_engine):
    sim = https_sim()
    jobs = await run_batch(make_engine, sim, 5, HttpPolicy(deadline_s=120.0, keepalive=False))
    assert [job.state for job in jobs] == [JobState.DONE] * 5
    stats = sim.stats()
    assert stats["tls_handshakes"] == stats["connections"] == stats["requests"]


async def test_a_certificate_not_trusted_is_refused_before_anything_is_sent(make_sim):
    sim = make_sim(tls=True)  # SSL_CERT_FILE not set: the simulator's CA is unknown
    provider = VeniceProvider(sim.url("venice"), VENICE_KEY)
    try:
        with pytest.raises(NetworkError) as info:
            await provider.submit(req())
    finally:
        await provider.aclose()
    assert info.value.sent is False and "could not connect" in str(info.value)
    assert sim.state.queue_calls == []


async def test_the_round_trip_is_paid_per_connection_and_per_request(https_sim):
    """100 ms away: a new TLS connection costs three round trips before its first answer
    (TCP, TLS, the request); a request on a kept connection costs one."""
    sim = https_sim(rtt_s=0.1)
    provider = VeniceProvider(sim.url("venice"), VENICE_KEY)
    try:
        began = time.monotonic()
        await provider.quote(req())
        first = time.monotonic() - began
        began = time.monotonic()
        await provider.quote(req())
        second = time.monotonic() - began
    finally:
        await provider.aclose()
    assert first >= 0.3 and second >= 0.1
    assert sim.stats()["connections"] == 1


def test_the_simulator_cli_serves_https_and_says_how_to_trust_it():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.sim", "--port", "0", "--tls", "--rtt", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        url = lines[0].split()[1]
        trust = next(line for line in lines if line.startswith("trust"))
        ca_file = trust.split("SSL_CERT_FILE=", 1)[1].strip()
        assert url.startswith("https://")
        context = ssl.create_default_context(cafile=ca_file)
        assert httpx.get(url + "/models?type=video", verify=context,
                         timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err
