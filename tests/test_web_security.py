"""The web gallery against hostile requests, without a browser: a real `wan-tui serve` on a
loopback port, raw HTTP from httpx (and a raw socket where httpx would tidy the request).

No token, a wrong token, a foreign Host (DNS rebinding), `../` and other non-ids, bad
ranges, a huge query, cross-origin POSTs: each gets a clear 4xx and nothing else.
"""

from __future__ import annotations

import socket

import httpx
import pytest
from conftest import sim_env
from web_support import listed, run_batch, serving, wan

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def env(sim, tmp_path):
    env = sim_env(sim, tmp_path / "home")
    run_batch(env, ["a lighthouse in fog", "a paper boat on a gutter stream"])
    return env


def _client(served, *, token: bool = True, **kw) -> httpx.Client:
    cookies = {served.cookie: served.token} if token else {}
    return httpx.Client(base_url=served.base, cookies=cookies, follow_redirects=False,
                        timeout=10, **kw)


def _raw(served, request: bytes) -> bytes:
    """Send bytes as they are (httpx would normalise the path or the Host)."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        data = b""
        try:
            sock.sendall(request)
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server hung up on a request it will not read
    return data


def test_prints_one_url_and_the_ssh_line(env):
    with serving(env) as served:
        assert served.host == "127.0.0.1"
        assert sum(line.count("http://") for line in served.printed) == 1
        assert f"ssh -N -L {served.port}:127.0.0.1:{served.port} " in served.printed[1]


def test_the_token_is_needed_and_checked(env):
    with serving(env) as served:
        with _client(served, token=False) as anon:
            for path in ("/", "/api/jobs", "/video/1", "/poster/1.png", "/events"):
                answer = anon.get(path)
                assert answer.status_code == 401, path
                assert "token" in answer.text and "video" not in answer.headers["content-type"]
            # one character changed (a token that already ends in x must not be sent as is)
            changed = "y" if served.token.endswith("x") else "x"
            wrong = anon.get("/", params={"token": served.token[:-1] + changed})
            assert wrong.status_code == 403 and "wrong token" in wrong.text
            assert anon.get("/", headers={"cookie": f"{served.cookie}=nope"}).status_code == 403
            # another port's cookie is not this gallery's
            other = f"wan_tui_token_{served.port + 1}={served.token}"
            assert anon.get("/", headers={"cookie": other}).status_code == 401
            # first visit: the token moves into a cookie and out of the address bar
            first = anon.get("/", params={"token": served.token, "q": "x"})
            assert first.status_code == 303 and first.headers["location"] == "/?q=x"
            set_cookie = first.headers["set-cookie"]
            assert served.cookie in set_cookie and "HttpOnly" in set_cookie
            assert "samesite=strict" in set_cookie.lower()
        with _client(served) as ok:
            page = ok.get("/")
            assert page.status_code == 200 and "wan-tui gallery" in page.text
            assert page.headers["x-frame-options"] == "DENY"


def test_a_foreign_host_is_refused(env):
    with serving(env) as served, _client(served) as client:
        for host in ("evil.example", f"evil.example:{served.port}", "127.0.0.1.evil.example",
                     "", "localhost.:80"):
            answer = client.get("/api/jobs", headers={"host": host})
            assert answer.status_code == 403, host
            assert "not served as" in answer.text
        assert client.get("/api/jobs", headers={"host": f"localhost:{served.port}"}
                          ).status_code == 200
        # through an ssh -L with another local port, the name is still a loopback one
        assert client.get("/api/jobs", headers={"host": "localhost:9999"}).status_code == 200


def test_files_are_reached_by_job_id_only(env, tmp_path):
    with serving(env) as served, _client(served) as client:
        for path in ("/video/..%2F..%2Fhistory.db", "/video/1abc", "/video/-1",
                     "/video/1.mp4", "/poster/..%2F1.png", "/poster/1.jpg",
                     "/api/jobs/%2e%2e", "/video/99999999999999999999999"):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert answer.headers["content-type"].startswith("application/json"), path
            assert "error" in answer.json()
        raw = _raw(served, (f"GET /video/../../history.db HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            f"Cookie: {served.cookie}={served.token}\r\n"
                            "Connection: close\r\n\r\n").encode())
        assert raw.startswith(b"HTTP/1.1 404") and b"SQLite format" not in raw
        unknown = client.get("/video/999")
        assert unknown.status_code == 404 and unknown.json()["error"] == "there is no job 999"
        assert client.get("/video/1").status_code == 200


def test_bad_ranges_and_huge_queries(env):
    with serving(env) as served, _client(served) as client:
        size = int(client.head("/video/1").headers["content-length"])
        part = client.get("/video/1", headers={"range": "bytes=100-199"})
        assert part.status_code == 206 and len(part.content) == 100
        assert part.headers["content-range"] == f"bytes 100-199/{size}"
        for bad in ("bytes=abc", "items=0-1", "bytes=", "bytes=5-1"):
            answer = client.get("/video/1", headers={"range": bad})
            assert answer.status_code in (400, 416), bad
            assert len(answer.content) < 200, bad
        beyond = client.get("/video/1", headers={"range": f"bytes={size + 10}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{size}"
        huge = client.get("/api/jobs", params={"q": "fox " * 2000})
        assert huge.status_code == 400 and "at most" in huge.json()["error"]
        typo = client.get("/api/jobs", params={"q": "state:dnoe"})
        assert typo.status_code == 400 and "unknown state" in typo.json()["error"]
        for params in ({"limit": "0"}, {"limit": "abc"}, {"offset": "-3"}, {"sort": "id;drop"}):
            assert client.get("/api/jobs", params=params).status_code == 400, params
        assert client.get("/api/jobs", params={"ids": ",".join(["1"] * 500)}
                          ).status_code == 400
        long_url = _raw(served, (f"GET /api/jobs?q={'a' * 200_000} HTTP/1.1\r\nHost: "
                                 f"127.0.0.1\r\nCookie: {served.cookie}={served.token}\r\n"
                                 "Connection: close\r\n\r\n").encode())
        # past h11's limit: a 4xx, or the connection closed; never an answer
        assert long_url == b"" or long_url.split(b" ")[1].startswith(b"4"), long_url[:80]


def test_changes_need_the_token_and_the_same_origin(env):
    with serving(env) as served, _client(served) as client:
        origin = served.base
        good = {"origin": origin, "x-wan-tui-token": served.token}
        for headers, why in (
            ({"origin": "http://evil.example", "x-wan-tui-token": served.token}, "Origin"),
            ({"x-wan-tui-token": served.token}, "Origin"),
            ({"origin": origin}, "token"),
            ({"origin": origin, "x-wan-tui-token": "nope"}, "token"),
            ({"origin": "null", "x-wan-tui-token": served.token}, "Origin"),
        ):
            answer = client.post("/api/jobs/1/pick", json={"pick": "star"}, headers=headers)
            assert answer.status_code == 403 and why in answer.text, headers
        with _client(served, token=False) as anon:  # no cookie either: a form from afar
            assert anon.post("/api/jobs/1/pick", json={"pick": "star"},
                             headers={"origin": origin}).status_code == 403
        assert [j["pick"] for j in listed(env)] == [None, None]
        for body, status in (({"pick": "love"}, 400), ({"pick": 3}, 400)):
            assert client.post("/api/jobs/1/pick", json=body, headers=good
                               ).status_code == status
        assert client.post("/api/jobs/1/pick", content=b"{not json", headers=good
                           ).status_code == 400
        assert client.post("/api/jobs/77/pick", json={"pick": "star"}, headers=good
                           ).status_code == 404
        assert client.put("/api/jobs/1/pick", json={"pick": "star"}, headers=good
                          ).status_code == 405
        assert client.post("/api/jobs/1/pick", json={"pick": "star"}, headers=good
                           ).json()["job"]["pick"] == "star"
        assert client.post("/video/1", headers=good).status_code == 405
    picks = {j["id"]: j["pick"] for j in listed(env)}
    assert picks == {1: "star", 2: None}


def test_exposing_the_gallery_takes_a_flag_and_warns(env):
    refused = wan(env, "serve", "--host", "0.0.0.0", "--port", "0", timeout=30)
    assert refused.returncode == 2 and "--expose" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not refused.stdout
    with serving(env, "--host", "0.0.0.0", "--expose") as served:
        warning = served.process.stderr.readline()
        assert warning.startswith("warning: the gallery listens on 0.0.0.0:"), warning
        served.base = f"http://127.0.0.1:{served.port}"
        with _client(served) as client:
            assert client.get("/api/jobs", headers={"host": f"127.0.0.1:{served.port}"}
                              ).status_code == 200
            assert client.get("/api/jobs", headers={"host": "evil.example"}).status_code == 403


def test_a_port_in_use_is_one_line(env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        answer = wan(env, "serve", "--port", str(port), timeout=30)
    assert answer.returncode == 2
    assert answer.stderr.strip() == (f"wan-tui: port {port} is in use (another gallery?): "
                                     "choose one with --port N, or --port 0 for any free port")


def test_a_history_it_cannot_open_is_one_line(env, tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "home" / "history.db") as db:
        db.execute("PRAGMA user_version = 999")  # written by a newer wan-tui
    answer = wan(env, "serve", "--port", "0", timeout=30)
    assert answer.returncode != 0 and not answer.stdout
    lines = answer.stderr.strip().splitlines()
    assert len(lines) == 1 and "upgrade wan-tui" in lines[0], answer.stderr
