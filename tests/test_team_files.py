"""Files across machines and who follows what, on a team's history in a real PostgreSQL
(tests/pg.py): two "machines" are two homes with their own WAN_TUI_ENGINE_NAME and output
folders, over one database. A video on another machine's disk is fetched with `scp`: `o`
and `y` copy that line (OSC 52), `show` prints it; a shared folder opens as it is. `show`,
`list --json` and the detail pane say which engine follows a job and where it was recorded;
`doctor` lists the team's engines."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sqlite3
import time
from pathlib import Path

import httpx
import psycopg
from conftest import T2V, sim_env, stop_engines
from test_app import dashboard, notices, on_screen, until
from web_support import serving

from tui.app.screens.confirm import ConfirmScreen
from tui.config import load_config, machine_name
from tui.jobs import Job, JobRequest, JobState
from tui.store import open_store
from tui.store.records import TeamEngine
from tui.whereabouts import file_elsewhere


def alpha_runs_a_batch(team_cli, tmp_path: Path, videos: Path, prompts: list[str]) -> list[dict]:
    """Machine alpha records and follows a batch to its own output folder; its engine is
    then stopped (the next machine's window becomes an engine of its own)."""
    batch = tmp_path / "alpha.jsonl"
    batch.write_text("".join(json.dumps({"model": T2V, "prompt": p, "duration": "5s"}) + "\n"
                             for p in prompts))
    code, out, err = team_cli("batch", str(batch), "--yes", "--follow", "--progress-every",
                              "0.5", home="alpha", WAN_TUI_DATABASE=team_cli.dsn,
                              WAN_TUI_ENGINE_NAME="alpha", WAN_TUI_OUTPUT_DIR=str(videos))
    assert code == 0 and f"{len(prompts)} done, 0 not done" in out, err
    stop_engines(tmp_path / "alpha")
    code, out, _ = team_cli("list", "--json", home="alpha", WAN_TUI_DATABASE=team_cli.dsn,
                            WAN_TUI_ENGINE_NAME="alpha")
    return json.loads(out)


def fake_viewer(tmp_path: Path, monkeypatch) -> Path:
    """A desktop whose `xdg-open` (a real program on PATH) writes down what it opened."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opened = tmp_path / "opened.txt"
    viewer = bin_dir / "xdg-open"
    viewer.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$1\" >> {shlex.quote(str(opened))}\n")
    viewer.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DISPLAY", ":7")
    for var in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"):
        monkeypatch.delenv(var, raising=False)
    return opened


# ------------------------------------------------------------------ where a file is


def test_a_file_is_elsewhere_unless_it_is_here_with_its_size(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WAN_TUI_ENGINE_NAME", "beta")
    video = tmp_path / "it's a fox.mp4"
    video.write_bytes(b"x" * 100)
    job = Job(id=3, request=JobRequest(model=T2V, prompt="fox"), state=JobState.DONE,
              created_at=1.0, updated_at=2.0, file=str(video), bytes=100, file_host="alpha")
    assert file_elsewhere(job) is None  # a shared folder: the very file is here
    assert file_elsewhere(job.with_(bytes=99)).scp == f"scp alpha:{shlex.quote(str(video))} ."
    gone = job.with_(file="/srv/alpha/videos/fox 1.mp4")
    assert file_elsewhere(gone).scp == "scp alpha:'/srv/alpha/videos/fox 1.mp4' ."
    assert shlex.split(file_elsewhere(gone).scp) == ["scp", "alpha:/srv/alpha/videos/fox 1.mp4",
                                                     "."]
    assert file_elsewhere(gone.with_(file_host="beta")) is None  # this machine's own
    assert file_elsewhere(gone.with_(file_host=None)) is None  # one person's history


# ------------------------------------------------------------------ o and y on another machine


def test_o_and_y_copy_the_scp_line_for_another_machines_file(
        team_cli, sim, tmp_path, monkeypatch) -> None:
    """alpha's video is on alpha's disk (its folder moved out of reach here): on beta, `o`
    and `y` put `scp alpha:PATH .` on the clipboard with OSC 52 and say so in one notice;
    `show` prints the line. Put back where beta can read it (a shared folder, same size),
    `o` opens the file itself; a different file at that path is not taken for it."""
    videos = tmp_path / "alpha disk" / "videos"  # a space: the path is shell-quoted
    (row,) = alpha_runs_a_batch(team_cli, tmp_path, videos, ["a fox on alpha"])
    assert row["file_host"] == "alpha" and row["origin"] == "alpha" and row["engine"] is None
    path = row["file"]
    assert Path(path).is_relative_to(videos)
    scp = f"scp alpha:{shlex.quote(path)} ."
    assert "'" in scp  # quoted, so it pastes into a shell as one argument
    (tmp_path / "alpha disk").rename(tmp_path / "on alpha only")  # not on beta's disk

    opened = fake_viewer(tmp_path, monkeypatch)  # beta has a desktop: o must still not open
    monkeypatch.setenv("WAN_TUI_ENGINE_NAME", "beta")
    monkeypatch.setenv("WAN_TUI_HOME", str(tmp_path / "beta"))
    config = load_config(sim_env(sim, tmp_path / "beta", WAN_TUI_DATABASE=team_cli.dsn,
                                 WAN_TUI_ENGINE_NAME="beta"))
    asyncio.run(beta_presses_o_and_y(sim, config, path, scp, tmp_path, opened))
    code, out, _ = team_cli("show", str(row["id"]), home="beta",
                            WAN_TUI_DATABASE=team_cli.dsn, WAN_TUI_ENGINE_NAME="beta")
    assert code == 0 and f"fetch it with: {scp}" in out and "recorded on alpha" in out
    assert f"→ alpha:{path}" in out.splitlines()[0]  # not a path on beta's disk
    code, out, _ = team_cli("show", str(row["id"]), home="alpha",
                            WAN_TUI_DATABASE=team_cli.dsn, WAN_TUI_ENGINE_NAME="alpha")
    assert code == 0 and "fetch it with" not in out  # alpha's own file


async def beta_presses_o_and_y(sim, config, path: str, scp: str, tmp_path: Path,
                               opened: Path) -> None:
    async with dashboard(sim, config=config) as (app, pilot, facade):
        await until(pilot, lambda: app.detail.job is not None, 5, "detail")
        pane = app.detail.plain(width=400)  # the path on one line
        assert scp in pane and "on alpha, not on this machine; o / y copy:" in pane
        assert any(line.split() == ["recorded", "on", "alpha"] for line in pane.splitlines())
        await pilot.press("o")
        await until(pilot, lambda: app.clipboard == scp, 5, "scp line copied by o")
        assert f"osc52:{scp}" in app.terminal.sent
        assert notices(app)[-1] == f"on alpha: `{scp}` copied"
        app.copy_to_clipboard("")
        app.terminal.sent.clear()
        await pilot.press("y")
        await until(pilot, lambda: app.clipboard == scp, 5, "scp line copied by y")
        assert list(app.terminal.sent) == [f"osc52:{scp}"]
        await pilot.press("w")  # nothing to play here either
        await until(pilot, lambda: "on alpha, not on this machine" in notices(app)[-1], 5, "w")
        # No picture either: none was made from whatever this machine has at that path.
        assert app.detail.picture_of is None
        assert not facade.thumb_path(app.detail.job.id).exists()
        assert not opened.exists()  # nothing opened a wrong local path
        await pilot.press("d")  # its copy on alpha's disk is a whole copy: not "lost"
        await until(pilot, lambda: on_screen(app, ConfirmScreen), 5, "confirm")
        question = str(app.screen.message)
        assert "kept on another machine only (alpha)" in question
        assert "no local copy" not in question
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), 5, "no")
        assert sim.state.complete_calls == []

        # A shared folder: the same path reaches the same file from beta.
        (tmp_path / "on alpha only").rename(tmp_path / "alpha disk")
        app.terminal.sent.clear()
        await pilot.press("o")
        await until(pilot, lambda: opened.exists(), 10, "the viewer ran")
        assert opened.read_text().splitlines() == [path]
        assert notices(app)[-1] == f"opened {Path(path).name}"
        await pilot.press("y")
        await until(pilot, lambda: app.clipboard == path, 5, "the local path copied")

        # Another file under that name (each machine's default folder has the same
        # path): its size differs, so it is not alpha's video.
        Path(path).write_bytes(b"not the video")
        app.copy_to_clipboard("")
        await pilot.press("y")
        await until(pilot, lambda: app.clipboard == scp, 5, "scp again")


def test_the_gallery_names_the_machine_instead_of_a_broken_player(team_cli, sim,
                                                                  tmp_path) -> None:
    """`wan-tui serve` on beta: alpha's video is not served from a path that names nothing
    here; its card says where it is and how to fetch it, and /video/ID says so too."""
    videos = tmp_path / "alpha disk" / "videos"
    (row,) = alpha_runs_a_batch(team_cli, tmp_path, videos, ["a fox for the gallery"])
    (tmp_path / "alpha disk").rename(tmp_path / "on alpha only")
    scp = f"scp alpha:{shlex.quote(row['file'])} ."
    env = sim_env(sim, tmp_path / "beta", WAN_TUI_DATABASE=team_cli.dsn,
                  WAN_TUI_ENGINE_NAME="beta")
    with serving(env) as served, httpx.Client(
            base_url=served.base, cookies={served.cookie: served.token}, timeout=10) as web:
        (card,) = web.get("/api/jobs").json()["jobs"]
        assert card["video"] is None and card["poster"] is None
        assert card["elsewhere"] == f"on alpha, not on this machine: {scp}"
        answer = web.get(f"/video/{row['id']}")
        assert answer.status_code == 404 and scp in answer.json()["error"]
        (tmp_path / "on alpha only").rename(tmp_path / "alpha disk")  # a shared folder
        (card,) = web.get("/api/jobs").json()["jobs"]
        assert card["elsewhere"] is None and card["video"] == f"/video/{row['id']}"
        assert web.get(card["video"]).content == Path(row["file"]).read_bytes()


# ------------------------------------------------------------------ who follows a job


def record(dsn: str, prompts: list[str]) -> list[Job]:
    """Jobs recorded (pending, nothing sent) by this machine's store."""
    async def add() -> list[Job]:
        store = await open_store(dsn)
        try:
            return await store.add_jobs([JobRequest(model=T2V, prompt=p) for p in prompts])
        finally:
            await store.close()

    return asyncio.run(add())


def test_show_and_list_json_say_which_engine_follows_a_job(team_cli, monkeypatch) -> None:
    """A job recorded on alpha and leased to gamma (as the lead's engines write owner and
    lease_until): `show` and `list --json` name the engine and its lease's time left, and
    where the job was recorded; the keys scripts already read are unchanged."""
    monkeypatch.setenv("WAN_TUI_ENGINE_NAME", "alpha")
    followed, waiting = record(team_cli.dsn, ["leased", "waiting"])
    with psycopg.connect(team_cli.dsn, autocommit=True) as conn:
        conn.execute("UPDATE jobs SET owner = 'gamma', lease_until = %s WHERE id = %s",
                     (time.time() + 20, followed.id))
    code, out, err = team_cli("list", "--json", home="beta", WAN_TUI_DATABASE=team_cli.dsn,
                              WAN_TUI_ENGINE_NAME="beta")
    assert code == 0, err
    rows = {r["id"]: r for r in json.loads(out)}
    leased = rows[followed.id]
    assert leased["origin"] == "alpha" and leased["engine"]["name"] == "gamma"
    assert 15 < leased["engine"]["lease_left_s"] <= 20
    assert rows[waiting.id]["engine"] is None and rows[waiting.id]["origin"] == "alpha"
    assert {"id", "state", "file", "file_host", "bytes", "request", "pick"} <= set(leased)
    code, out, _ = team_cli("show", str(followed.id), home="beta",
                            WAN_TUI_DATABASE=team_cli.dsn, WAN_TUI_ENGINE_NAME="beta")
    assert code == 0 and "engine: gamma, lease 1" in out and "recorded on alpha" in out
    shown = json.loads(out[out.index("{"):out.rindex("}") + 1])
    assert shown["engine"]["name"] == "gamma" and shown["origin"] == "alpha"

    with psycopg.connect(team_cli.dsn, autocommit=True) as conn:  # gamma went quiet
        conn.execute("UPDATE jobs SET lease_until = %s WHERE id = %s",
                     (time.time() - 40, followed.id))
    code, out, _ = team_cli("show", str(followed.id), home="beta",
                            WAN_TUI_DATABASE=team_cli.dsn, WAN_TUI_ENGINE_NAME="beta")
    assert "gamma, lease ran out 4" in out and "another engine adopts the job" in out


def test_the_detail_pane_names_the_engine_and_the_recording_machine() -> None:
    from tui.app.widgets.detail import team_rows

    job = Job(id=4, request=JobRequest(model=T2V, prompt="fox"), state=JobState.PROCESSING,
              created_at=1.0, updated_at=2.0, origin="alpha", owner="gamma",
              lease_until=1020.0)

    def rows(j: Job, now: float = 1000.0) -> list[str]:
        return [f"{label}: {value.plain}" for label, value in team_rows(j, now)]

    assert rows(job) == ["engine: gamma, lease 20s left", "recorded: on alpha"]
    assert rows(job, 1045.0)[0] == ("engine: gamma, lease ran out 25s ago: another engine "
                                    "adopts the job")
    assert rows(job.with_(state=JobState.PENDING, owner=None))[0].startswith("engine: none yet")
    assert rows(job.with_(state=JobState.DONE)) == ["recorded: on alpha"]  # nobody follows it
    assert rows(job.with_(origin=None, owner=None)) == []  # one person's history...
    here = machine_name()
    assert rows(job.with_(origin=None, owner=here)) == []  # ...whose one engine holds it


# ------------------------------------------------------------------ the team's engines


def insert_engines(dsn: str, now: float, owned: dict[str, list[int]]) -> None:
    """Rows as each engine writes its own (the lead's tui/engine: heartbeats, leases)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, host, pid, beat, stopped in (
                ("alpha", "studio-1", 4242, now - 3, None),
                ("beta", "laptop-b", 777, now - 600, now - 590),
                ("gamma", "box-g", 31337, now - 95, None),
                ("delta", "box-d", 55, now - 400, None)):
            conn.execute("INSERT INTO engines (name, host, pid, home, output_dir, started_at,"
                         " heartbeat_at, stopped_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                         (name, host, pid, f"/home/{name}", f"/home/{name}/videos", now - 900,
                          beat, stopped))
        for name, ids in owned.items():
            conn.execute("UPDATE jobs SET owner = %s, lease_until = %s WHERE id = ANY(%s)",
                         (name, now + 30, ids))


def test_doctor_lists_each_engine_and_flags_a_silent_one(team_cli, monkeypatch) -> None:
    monkeypatch.setenv("WAN_TUI_ENGINE_NAME", "alpha")
    jobs = record(team_cli.dsn, [f"p{i}" for i in range(5)])
    now = time.time()
    insert_engines(team_cli.dsn, now, {"alpha": [jobs[0].id], "gamma": [jobs[1].id, jobs[2].id]})

    async def read() -> dict[str, TeamEngine]:
        store = await open_store(team_cli.dsn)
        try:
            await store.transition(jobs[2].id, JobState.CANCELLED, "stopped")  # not active
            return {e.name: e for e in await store.team_engines()}
        finally:
            await store.close()

    engines = asyncio.run(read())
    assert list(engines) == ["alpha", "beta", "delta", "gamma"]
    assert {n: e.active_jobs for n, e in engines.items()} == {
        "alpha": 1, "beta": 0, "delta": 0, "gamma": 1}
    assert engines["gamma"] == TeamEngine("gamma", "box-g", 31337, "/home/gamma",
                                          "/home/gamma/videos", now - 900, now - 95, None, 1)
    assert [n for n, e in engines.items() if e.stale(time.time())] == ["delta", "gamma"]

    code, out, _ = team_cli("doctor", home="beta", WAN_TUI_DATABASE=team_cli.dsn)
    lines = out.splitlines()
    assert "ok   engines: 4 on this history, 1 running" in lines
    assert any(line.startswith("ok   engine alpha on studio-1 pid 4242: running, lease age ")
               and line.endswith(" s, 1 active job") for line in lines), out
    assert "ok   engine beta on laptop-b pid 777: stopped 590 s ago, 0 active jobs" in lines \
        or "ok   engine beta on laptop-b pid 777: stopped 591 s ago, 0 active jobs" in lines
    gamma = next(line for line in lines if "engine gamma" in line)
    assert gamma.startswith("BAD  engine gamma on box-g pid 31337: not heard from for 9")
    assert "its jobs are adopted by the others (1 active job still held)" in gamma
    delta = next(line for line in lines if "engine delta" in line)
    assert delta.startswith("ok   engine delta on box-d pid 55: not heard from for 40")
    assert delta.endswith("its jobs are adopted by the others (0 active jobs still held)")
    assert code == 1 and "1 problem found" in out  # gamma's job waits for an adopter
    # With leases of two minutes (engine_lease_s), 95 s of silence is not yet a lost lease.
    code, out, _ = team_cli("doctor", home="beta", WAN_TUI_DATABASE=team_cli.dsn,
                            WAN_TUI_ENGINE_LEASE_S="120")
    assert code == 0 and "engine gamma on box-g pid 31337: running, lease age 9" in out


async def test_one_persons_history_answers_the_same(tmp_path) -> None:
    """The schema is one: on SQLite the engines table is there and read the same way."""
    store = await open_store(tmp_path / "history.db")
    try:
        assert await store.team_engines() == []
        (job,) = await store.add_jobs([JobRequest(model=T2V, prompt="mine")])
        with sqlite3.connect(tmp_path / "history.db") as conn:
            conn.execute("INSERT INTO engines VALUES ('solo', 'desk', 9, '/h', '/h/v', 1.0,"
                         " 2.0, NULL)")
            conn.execute("UPDATE jobs SET owner = 'solo' WHERE id = ?", (job.id,))
        assert await store.team_engines() == [
            TeamEngine("solo", "desk", 9, "/h", "/h/v", 1.0, 2.0, None, 1)]
    finally:
        await store.close()
