"""`wan-tui export QUERY DIR` as a user runs it (a real process over a history the real CLI
filled from the simulator): what lands in the folder and what the manifests say. Opening
the export's index.html from file:// in Chromium is in test_web_browser."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import sim_env
from PIL import Image
from web_support import listed, run_batch, serving, wan

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def env(sim, tmp_path):
    env = sim_env(sim, tmp_path / "home")
    run_batch(env, ["a red fox in fresh snow", "a red fox at dusk"], negative_prompt="blur")
    run_batch(env, ["a paper boat on a gutter stream"], seed=42)
    return env


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_folder_to_hand_over(env, tmp_path):
    import httpx

    with serving(env) as served:  # a pick made in the gallery travels with the export
        httpx.post(f"{served.base}/api/jobs/2/pick", json={"pick": "star"},
                   headers={"origin": served.base, "x-wan-tui-token": served.token,
                            "cookie": f"{served.cookie}={served.token}"}).raise_for_status()
    out = tmp_path / "share" / "foxes"
    done = wan(env, "export", "fox", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"exported 2 jobs to {out} (2 linked); open {out}/index.html"
    assert sorted(p.name for p in out.iterdir()) == [
        "contact-sheet.png", "index.html", "manifest.csv", "manifest.json", "posters",
        "videos"]
    jobs = {j["id"]: j for j in listed(env)}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["query"] == "fox"
    records = manifest["jobs"]
    assert [r["id"] for r in records] == [1, 2]
    for record in records:
        job = jobs[record["id"]]
        video = out / record["file"]
        # a hard link to the job's own file: no second copy on the same disk
        assert os.stat(video).st_ino == os.stat(job["file"]).st_ino
        assert record["sha256"] == _sha(video) == job["sha256"]
        assert record["prompt"] == job["prompt"] and record["model"] == job["model"]
        assert record["parameters"] == job["request"]
        assert record["parameters"]["negative_prompt"] == "blur"
        assert record["negative_prompt"] == "blur"
        assert record["cost_usd"] == job["cost_usd"] > 0
        assert record["facts"]["video_codec"] == "h264" and record["facts"]["width"] == 320
        with Image.open(out / record["poster"]) as poster:
            assert poster.format == "PNG" and poster.width > 0
    assert records[1]["pick"] == "star" and records[1]["picked_at"] is not None
    assert records[0]["pick"] is None
    rows = list(csv.DictReader((out / "manifest.csv").open(encoding="utf-8")))
    assert [(r["id"], r["pick"], r["sha256"]) for r in rows] == [
        (str(r["id"]), r["pick"] or "", r["sha256"]) for r in records]
    assert rows[0]["prompt"] == "a red fox in fresh snow" and rows[0]["video_codec"] == "h264"
    with Image.open(out / "contact-sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.width > 2 * 320
    page = (out / "index.html").read_text()
    assert 'data-mode="static"' in page and "a red fox at dusk" in page
    assert "a paper boat" not in page  # only what the query chose
    assert "token" not in json.loads(page.split('type="application/json">')[1]
                                     .split("</script>")[0])


def test_copies_where_a_link_cannot_go(env):
    # /dev/shm is a tmpfs: a hard link across filesystems fails (EXDEV), so export copies
    home_dev = os.stat(listed(env)[0]["file"]).st_dev
    if not os.path.isdir("/dev/shm"):
        pytest.fail("/dev/shm is missing: this test needs a second filesystem")
    scratch = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="wan-tui-export-"))
    try:
        out = scratch / "boats"
        done = wan(env, "export", "batch:3", str(out))
        assert done.returncode == 0, done.stderr
        other_fs = os.stat(scratch).st_dev != home_dev
        assert ("(1 copied)" if other_fs else "(1 linked)") in done.stdout
        (record,) = json.loads((out / "manifest.json").read_text())["jobs"]
        assert record["sha256"] == _sha(out / record["file"]) == listed(env)[0]["sha256"]
        assert record["parameters"]["seed"] == 42
        assert not list((out / "videos").glob("*.part"))
    finally:
        shutil.rmtree(scratch)


def test_bad_input_is_one_line(env, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    (tmp_path / "a-file").write_text("x")
    for args, says in (
        (["fox", str(tmp_path / "busy")], "is not empty: export into a new or empty folder"),
        (["fox", str(tmp_path / "a-file")], "is a file: export into a new or empty folder"),
        (["state:bogus", str(tmp_path / "x")], "unknown state 'bogus'"),
        (["pick:maybe", str(tmp_path / "x")], "pick:maybe: use pick:star"),
        (["nothing-like-this", str(tmp_path / "x")], "no finished job matches"),
        (["state:failed", str(tmp_path / "x")], "no finished job matches"),
    ):
        answer = wan(env, "export", *args)
        assert answer.returncode == 2, args
        lines = answer.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], (args, answer.stderr)
        assert "Traceback" not in answer.stderr
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    assert not (tmp_path / "x").exists()
