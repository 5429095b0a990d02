"""The headless CLI, in-process, against the simulator: bad input costs nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import T2V, sim_env

from tui.cli import main

I2V = "wan-2.5-preview-image-to-video"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def cli(sim, monkeypatch, tmp_path, capsys):
    """Run `wan-tui ARGS` in-process with the simulator configured; returns (code, out, err)."""
    for key, value in sim_env(sim, tmp_path / "home").items():
        monkeypatch.setenv(key, value)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    run.sim = sim
    return run


def charged(sim) -> int:
    return len(sim.state.queue_calls)


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


SUBMIT = ("submit", "--model", T2V, "--duration", "5s", "--yes")


@pytest.mark.parametrize(("extra", "expect"), [
    (("--prompt", "x" * 2501), "at most 2500"),
    (("--prompt", "ok", "--duration", "7s"), "duration 7s is not offered"),
    (("--prompt", "ok", "--resolution", "4k"), "resolution 4k is not offered"),
    (("--prompt", "ok", "--aspect-ratio", "2:1"), "aspect ratio 2:1 is not offered"),
    (("--prompt", "   "), "prompt is empty"),
])
def test_submit_refuses_invalid_requests_before_any_call(cli, extra, expect):
    code, _, err = cli(*SUBMIT, *extra)
    assert code == 2
    assert expect in one_line(err)
    assert charged(cli.sim) == 0


def test_unknown_model_is_refused(cli):
    code, _, err = cli("submit", "--model", "wan-9", "--prompt", "x", "--yes")
    assert code == 2 and "unknown model 'wan-9'" in one_line(err)
    assert charged(cli.sim) == 0


def test_image_to_video_needs_an_image(cli):
    code, _, err = cli("submit", "--model", I2V, "--prompt", "x", "--yes")
    assert code == 2 and "give an image" in one_line(err)


def test_missing_and_oversized_and_wrong_type_images(cli, tmp_path, monkeypatch):
    code, _, err = cli("submit", "--model", I2V, "--prompt", "x", "--image",
                       str(tmp_path / "nope.png"), "--yes")
    assert code == 2 and "no such file" in one_line(err)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    code, _, err = cli("submit", "--model", I2V, "--prompt", "x", "--image", str(text), "--yes")
    assert code == 2 and "not a PNG" in one_line(err)
    big = tmp_path / "big.png"
    big.write_bytes(PNG + b"\0" * (21 * 1024 * 1024))
    code, _, err = cli("submit", "--model", I2V, "--prompt", "x", "--image", str(big), "--yes")
    assert code == 2 and "limit is" in one_line(err)
    assert charged(cli.sim) == 0


def test_local_image_is_sent_as_data_url(cli, tmp_path):
    image = tmp_path / "frame.png"
    image.write_bytes(PNG)
    code, out, _ = cli("submit", "--model", I2V, "--prompt", "animate it", "--image", str(image),
                       "--yes")
    assert code == 0, out
    (remote,) = cli.sim.state.jobs_snapshot()
    assert remote.body["image_url"].startswith("data:image/png;base64,")


def test_wrong_key_is_refused_at_the_quote(cli, monkeypatch):
    monkeypatch.setenv("VENICE_API_KEY", "wrong")
    code, _, err = cli(*SUBMIT, "--prompt", "ok")
    assert code == 2 and "API key" in one_line(err) and "401" in err
    assert "wrong" not in err  # the key itself is never echoed
    assert charged(cli.sim) == 0


def test_no_balance_is_refused_before_queueing(make_sim, monkeypatch, tmp_path, capsys):
    poor = make_sim(balance_usd=0.0)
    for key, value in sim_env(poor, tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    code = main([*SUBMIT, "--prompt", "ok"])
    err = capsys.readouterr().err
    assert code == 1
    assert "balance" in err
    assert not [c for c in poor.state.queue_calls if c[1]]


def test_missing_key_says_how_to_configure(cli, monkeypatch):
    monkeypatch.delenv("VENICE_API_KEY")
    code, _, err = cli(*SUBMIT, "--prompt", "ok")
    assert code == 2 and "VENICE_API_KEY" in one_line(err)


def write_batch(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_corrupt_batch_line_submits_nothing(cli, tmp_path):
    batch = write_batch(tmp_path / "b.jsonl", [
        {"model": T2V, "prompt": "fine", "duration": "5s"},
        '{"model": "' + T2V + '", "prompt": ',
    ])
    code, _, err = cli("batch", str(batch), "--yes")
    assert code == 2 and one_line(err).startswith("wan-tui: line 2: not valid JSON")
    assert charged(cli.sim) == 0


def test_invalid_batch_line_names_its_line(cli, tmp_path):
    batch = write_batch(tmp_path / "b.jsonl", [
        {"model": T2V, "prompt": "fine", "duration": "5s"},
        {"model": T2V, "prompt": "bad", "duration": "5s", "resolution": "8k"},
    ])
    code, _, err = cli("batch", str(batch), "--yes")
    assert code == 2 and "line 2: resolution 8k" in one_line(err)
    assert charged(cli.sim) == 0


def test_batch_over_max_cost_is_refused(cli, tmp_path):
    batch = write_batch(tmp_path / "b.jsonl",
                        [{"model": T2V, "prompt": f"p{i}", "duration": "10s"} for i in range(4)])
    code, out, err = cli("batch", str(batch), "--yes", "--max-cost", "1.00")
    assert code == 2 and "above --max-cost" in one_line(err)
    assert "4 jobs, total $2.50" in out  # 10 s at $0.05/s, audio on (+25 %)
    assert charged(cli.sim) == 0


def test_batch_without_yes_on_a_pipe_asks_for_it(cli, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    batch = write_batch(tmp_path / "b.jsonl", [{"model": T2V, "prompt": "p", "duration": "5s"}])
    code, _, err = cli("batch", str(batch))
    assert code == 2 and "--yes" in one_line(err)
    assert charged(cli.sim) == 0


def test_batch_then_watch_then_list(cli, tmp_path):
    batch = write_batch(tmp_path / "b.jsonl",
                        [{"model": T2V, "prompt": f"fox {i}", "duration": "5s"} for i in range(3)])
    # No engine runs: batch starts one (a process of its own) and prints its progress.
    code, out, _ = cli("batch", str(batch), "--yes", "--follow", "--progress-every", "0.5")
    assert code == 0 and "3 done, 0 not done" in out and "3/3 done" in out
    assert charged(cli.sim) == 3
    code, out, _ = cli("watch", "--progress-every", "0.5")
    assert code == 0 and "no active jobs" in out
    code, out, _ = cli("list", "--json")
    rows = json.loads(out)
    assert len(rows) == 3
    for row in rows:
        assert {"id", "provider", "model", "remote_id", "state", "prompt", "file", "bytes",
                "cost_usd", "error", "created_at", "finished_at"} <= set(row)
        assert row["state"] == "done" and Path(row["file"]).is_absolute()
        assert Path(row["file"]).stat().st_size == row["bytes"]
        video = row["video"]  # the facts read by decoding the file (5 s asked, 5 s got)
        assert {"width", "height", "duration_s", "fps", "video_codec", "audio_codec",
                "bitrate", "warnings"} <= set(video)
        assert (video["width"], video["height"], video["video_codec"]) == (320, 180, "h264")
        assert video["audio_codec"] is None and video["warnings"] == []
        assert video["duration_s"] == pytest.approx(5.0, abs=0.1)
    code, out, _ = cli("show", str(rows[0]["id"]))
    assert code == 0 and '"video_codec": "h264"' in out
    code, out, _ = cli("list", "--json", "-q", "fox 1")
    assert [r["prompt"] for r in json.loads(out)] == ["fox 1"]
    code, out, _ = cli("list", "--state", "failed")
    assert code == 0 and out == ""


def test_watch_exits_one_when_a_job_does_not_finish(cli, tmp_path):
    batch = write_batch(tmp_path / "b.jsonl", [
        {"model": T2V, "prompt": "fine", "duration": "5s"},
        {"model": T2V, "prompt": "[sim:expire] gone", "duration": "5s"},
    ])
    code, out, _ = cli("batch", str(batch), "--yes", "--follow")
    assert code == 1 and "1 done, 1 not done" in out
    assert "expired" in out.splitlines()[-2]  # the job that did not end done, with why


def test_cancel_delete_requeue(cli, tmp_path):
    code, out, _ = cli(*SUBMIT, "--prompt", "keep it", "--wait")
    assert code == 0
    code, out, err = cli("delete", "1", "--yes")
    assert code == 0 and [c[0] for c in cli.sim.state.complete_calls]
    code, out, err = cli("cancel", "1")
    assert code == 2 and "already done" in one_line(err)
    code, out, _ = cli("requeue", "1", "--yes")
    assert code == 0 and charged(cli.sim) == 2
    code, out, _ = cli("show", "1")
    assert "re-queued as job 2" in out and "remote media deleted" in out
    code, _, err = cli("cancel", "99")
    assert code == 2 and "no job 99" in one_line(err)


def test_models_and_quote(cli):
    code, out, _ = cli("models")
    assert code == 0 and T2V in out and "DEPRECATED" in out
    code, out, _ = cli("models", "--json")
    assert any(m["id"] == T2V for m in json.loads(out))
    code, out, _ = cli("quote", "--model", T2V, "--duration", "10s", "--resolution", "1080p")
    assert code == 0 and "$1.00" in out  # 10 s × $0.05 × 1.6 (1080p) × 1.25 (audio)
    assert charged(cli.sim) == 0


def test_usage_errors_are_one_line_exit_two(cli):
    code, _, err = cli("submit", "--model", T2V)
    assert code == 2 and "--prompt" in one_line(err)
    code, _, err = cli("frobnicate")
    assert code == 2 and "invalid choice" in one_line(err)
    code, _, err = cli("list", "--state", "bogus")
    assert code == 2 and "unknown --state" in one_line(err)


def test_engine_unit_runs_this_python_on_this_home_and_status_json_without_one(cli, tmp_path):
    import sys

    code, out, _ = cli("engine", "unit")
    assert code == 0
    assert f"ExecStart={sys.executable} -m tui.cli engine run" in out.splitlines()
    assert f"Environment=WAN_TUI_HOME={tmp_path / 'home'}" in out.splitlines()
    assert "systemctl --user enable --now wan-tui-engine" in out and "[Install]" in out
    code, out, _ = cli("engine", "status", "--json")
    status = json.loads(out)
    assert code == 0 and status["pid"] is None and status["active_jobs"] == 0
    assert status["budgets"] == [] and status["halts"] == {}
