"""`wan-tui import FOLDER`: a lost history rebuilt from the videos' sidecars or tags, never
twice, never with a call to a provider."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import T2V
from test_cli import cli, one_line, write_batch  # noqa: F401 (cli: a fixture)

from tui.media.recipe import sidecar_path
from tui.sim.video import render_clip

APIXO = {"provider": "apixo", "model": "wan-2-5", "prompt": "paper boat in the rain",
         "duration": 5, "resolution": "720p", "seed": 42}


@pytest.fixture
def run(cli):  # noqa: F811 (test_cli's fixture, under a name that does not shadow it)
    return cli


def sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def listed(run) -> dict[int, dict]:
    code, out, err = run("list", "--json")
    assert code == 0, err
    return {row["id"]: row for row in json.loads(out)}


KEPT = ("provider", "model", "prompt", "remote_id", "state", "cost_usd", "cost_is_estimate",
        "bytes", "sha256", "created_at", "submitted_at", "finished_at", "request", "video")


@pytest.fixture
def made(run, tmp_path):
    """A batch of three (Venice and APIXO) and a variation of one, done in a first home."""
    batch = write_batch(tmp_path / "b.jsonl", [
        {"model": T2V, "prompt": f"a heron, take {i}", "duration": "5s"} for i in range(2)
    ] + [APIXO])
    assert run("batch", str(batch), "--yes", "--follow", "--progress-every", "0.5")[0] == 0
    assert run("vary", "3", "--count", "1", "--yes", "--progress-every", "0.5")[0] == 0
    return listed(run)


def test_import_into_an_empty_home_rebuilds_every_job_and_again_adds_nothing(
        run, made, tmp_path, monkeypatch):
    videos = Path(made[1]["file"]).parent
    assert len(made) == 4 and all(row["state"] == "done" for row in made.values())
    # The first home's engine reads balances and the ledger on its own: stop it, so every
    # request counted after this line could only come from the import.
    assert run("engine", "stop")[0] == 0
    requests_before = run.sim.state.stats()["requests"]
    # A new, empty home with no provider keys at all: nothing could be called if it tried.
    monkeypatch.setenv("WAN_TUI_HOME", str(tmp_path / "new-home"))
    for var in ("VENICE_API_KEY", "APIXO_API_KEY", "ACEDATA_API_TOKEN"):
        monkeypatch.delenv(var)
    code, out, err = run("import", str(videos))
    assert code == 0, err
    head = re.fullmatch(r"added 4 jobs \(#1-#4, 2 batches, ~\$(\S+) spent on them\); "
                        r"0 already in the history; 0 skipped", out.splitlines()[0])
    assert head, out  # ~: APIXO's price is an estimate
    assert float(head[1]) == pytest.approx(sum(r["cost_usd"] for r in made.values()), abs=0.01)
    back = listed(run)
    assert len(back) == 4
    old_by_remote = {row["remote_id"]: row for row in made.values()}
    for row in back.values():
        old = old_by_remote[row["remote_id"]]
        assert {k: row[k] for k in KEPT} == {k: old[k] for k in KEPT}
        assert row["file"] == old["file"] and sha(row["file"]) == row["sha256"]
    # the batch of three is one batch again, the variation its own, linked to its source
    by_prompt = {row["prompt"]: row for row in back.values() if row["source_id"] is None}
    batch_ids = {by_prompt[p]["batch_id"] for p in ("a heron, take 0", "a heron, take 1",
                                                    "paper boat in the rain")}
    assert len(batch_ids) == 1
    (variation,) = [row for row in back.values() if row["source_id"] is not None]
    assert variation["source_id"] == by_prompt["paper boat in the rain"]["id"]
    assert variation["batch_id"] not in batch_ids
    code, out, _ = run("show", str(variation["id"]))
    assert "imported from" in out and "(sidecar)" in out
    # again: nothing new
    code, out, err = run("import", str(videos))
    assert code == 0 and out.startswith("added 0 jobs; 4 already in the history; 0 skipped")
    assert len(listed(run)) == 4
    assert run.sim.state.stats()["requests"] == requests_before  # not one call


def test_tags_alone_are_enough_and_files_without_a_recipe_are_named(run, made, tmp_path,
                                                                     monkeypatch):
    copies = tmp_path / "copied"
    shutil.copytree(Path(made[1]["file"]).parent, copies)
    for side in copies.glob("*.json"):
        side.unlink()  # the sidecars are lost: the MP4's own tags still say everything
    render_clip(copies / "holiday.mp4", prompt="not ours", job_id="x", seconds=0.5)
    (copies / "broken.mp4").write_bytes(Path(made[2]["file"]).read_bytes()[:5000])
    sidecar_path(copies / "broken.mp4").write_text(
        sidecar_path(Path(made[2]["file"])).read_text())
    monkeypatch.setenv("WAN_TUI_HOME", str(tmp_path / "tags-home"))
    code, out, err = run("import", str(copies))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("added 4 jobs") and lines[0].endswith("0 already in the "
                                                                    "history; 2 skipped")
    assert "  skipped broken.mp4: " in out and "  skipped holiday.mp4: no recipe" in out
    back = listed(run)
    old_by_remote = {row["remote_id"]: row for row in made.values()}
    for row in back.values():
        old = old_by_remote[row["remote_id"]]
        assert row["request"] == old["request"] and row["sha256"] == old["sha256"]
        assert row["created_at"] == old["created_at"] and Path(row["file"]).parent == copies
    assert len({row["batch_id"] for row in back.values()}) == 2  # from the job tag
    code, out, _ = run("show", str(min(back)))
    assert "(tags)" in out


def test_import_of_something_that_is_not_a_folder(run, tmp_path):
    code, _, err = run("import", str(tmp_path / "nowhere"))
    assert code == 2 and "not a folder" in one_line(err)
