"""Videos that carry their recipe: tags in the MP4 (remuxed, not re-encoded), a sidecar
beside it, and a failed remux that never costs the downloaded file."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from pathlib import Path

import av
from conftest import T2V, as_downloaded

from tui import __version__
from tui.jobs import JobRequest, JobState
from tui.media.recipe import (
    RECIPE_TAG,
    read_sidecar,
    read_tags,
    recipe_in_tags,
    request_of,
    sidecar_path,
    tagged_path,
)
from tui.providers.acedata import AceDataProvider
from tui.providers.apixo import ApixoProvider
from tui.providers.venice import VeniceProvider


def sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def providers(sim) -> dict:
    return {"venice": VeniceProvider(sim.url("venice"), "sim-venice-key"),
            "apixo": ApixoProvider(sim.url("apixo"), "sim-apixo-key"),
            "acedata": AceDataProvider(sim.url("acedata"), "sim-acedata-token")}


REQUESTS = [
    JobRequest(model=T2V, prompt="a heron lands on a misty pond", duration="5s",
               negative_prompt="blurry", resolution="1080p"),
    JobRequest(model="wan-2-5-t2v", provider="apixo", prompt="paper boat in the rain",
               duration="5s", resolution="720p", seed=42,
               options={"enable_prompt_expansion": False}),
    JobRequest(model="wan2.6-t2v", provider="acedata", prompt="waves on a lighthouse",
               duration="5s", seed=7, options={"shot_type": "multi"}),
]


async def run_all(engine, requests, quotes):
    await engine.start(resume=False)
    jobs = await engine.add(requests, quotes)
    await asyncio.wait_for(engine.wait_idle(), 60)
    return [await engine.store.get(j.id) for j in jobs]


async def test_every_finished_mp4_carries_its_recipe_and_its_sidecar_matches(sim, make_engine):
    engine = await make_engine(sim, providers=providers(sim), delete_after_download=True)
    jobs = await run_all(engine, REQUESTS, [0.31, 0.4, 0.5])
    assert [j.state for j in jobs] == [JobState.DONE] * 3
    for job in jobs:
        remote = sim.state.job(job.remote_id)
        with av.open(job.file) as container:  # read back with PyAV
            tags = dict(container.metadata)
            streams = [(s.type, s.codec_context.name) for s in container.streams]
        assert tags["wan_tui_prompt"] == tags["title"] == job.prompt
        assert tags["wan_tui_remote_id"] == job.remote_id
        assert tags["wan_tui_provider"] == job.provider and tags["wan_tui_model"] == job.model
        assert tags["wan_tui_version"] == __version__
        assert json.loads(tags["wan_tui_cost_usd"]) == job.cost_usd
        assert ("video", "h264") in streams
        recipe = recipe_in_tags(read_tags(Path(job.file)))
        assert recipe is not None and request_of(recipe) == job.request
        assert recipe["seed"] == job.request.seed
        # the history's sha256 and size are the file's as it is on disk (tagged) ...
        assert job.sha256 == sha(job.file) and job.bytes == Path(job.file).stat().st_size
        # ... and the provider's bytes are still known, in the sidecar
        side = read_sidecar(sidecar_path(Path(job.file)))
        assert side is not None and as_downloaded(job.file) == remote.sha256
        assert side["recipe"] == recipe
        assert side["file"]["sha256"] == job.sha256 and side["file"]["bytes"] == job.bytes
        assert side["file"]["name"] == Path(job.file).name
        assert side["file"]["video"] == job.video.to_dict()
        assert side["job"]["id"] == job.id and side["job"]["batch_id"] == job.batch_id
        assert side["job"]["finished_at"] == job.finished_at
        assert not tagged_path(Path(job.file + ".part")).exists()
    # the only provider here that deletes: after the tagged file was whole
    assert [rid for rid, _ in sim.state.complete_calls] == [jobs[0].remote_id]
    assert read_tags(Path(jobs[0].file))["wan_tui_negative_prompt"] == "blurry"
    assert json.loads(read_tags(Path(jobs[0].file))["wan_tui_params"]) == {
        "duration": "5s", "resolution": "1080p"}


async def test_ffprobe_reads_the_recipe_tags(sim, make_engine):
    """The tool people reach for reads every tag, as PyAV does (its own process, its own
    build of FFmpeg: Debian's)."""
    engine = await make_engine(sim, providers=providers(sim))
    jobs = await run_all(engine, REQUESTS[:2], [0.31, 0.4])
    for job in jobs:
        done = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-of", "json",
                               job.file], capture_output=True, text=True, check=True)
        tags = json.loads(done.stdout)["format"]["tags"]
        assert tags["wan_tui_prompt"] == job.prompt
        assert tags["wan_tui_remote_id"] == job.remote_id
        assert tags["wan_tui_model"] == job.model
        assert json.loads(tags[RECIPE_TAG]) == recipe_in_tags(read_tags(Path(job.file)))
        assert json.loads(tags["wan_tui_job"])["id"] == job.id


async def test_a_failed_remux_keeps_the_download_whole_and_untagged(sim, make_engine):
    engine = await make_engine(sim, delete_after_download=True)
    await engine.start(resume=False)
    (job,) = await engine.add([REQUESTS[0]], [0.5])
    # Where the tagged copy would be written, a folder: the remux cannot open it.
    blocker = tagged_path(engine.downloader.destination(job).with_suffix(".mp4.part"))
    blocker.mkdir(parents=True)
    (blocker / "keep").write_text("a file, so the folder cannot be removed either")
    await asyncio.wait_for(engine.wait_idle(), 60)
    job = await engine.store.get(job.id)
    assert job.state == JobState.DONE
    remote = sim.state.job(job.remote_id)
    assert sha(job.file) == job.sha256 == remote.sha256  # exactly the provider's bytes
    assert RECIPE_TAG not in read_tags(Path(job.file))
    details = " ".join(e.detail for e in await engine.store.events(job.id))
    assert "recipe not in the file: could not write the recipe" in details
    assert as_downloaded(job.file) == job.sha256  # the sidecar still says what it is
    assert [rid for rid, _ in sim.state.complete_calls] == [job.remote_id]


async def test_sidecars_can_be_turned_off(sim, make_engine):
    engine = await make_engine(sim, write_sidecars=False)
    (job,) = await run_all(engine, [REQUESTS[0]], [0.5])
    assert job.state == JobState.DONE
    assert not sidecar_path(Path(job.file)).exists()
    assert read_tags(Path(job.file))["wan_tui_remote_id"] == job.remote_id


def test_config_key_turns_sidecars_off(tmp_path, monkeypatch):
    from tui.config import ConfigError, load_config

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("WAN_TUI_HOME", str(home))
    assert load_config().write_sidecars is True
    (home / "config.toml").write_text("write_sidecars = false\n")
    assert load_config().write_sidecars is False
    (home / "config.toml").write_text("write_sidecars = 3\n")
    try:
        load_config()
    except ConfigError as err:
        assert "write_sidecars must be true or false" in str(err)
    else:
        raise AssertionError("a bad write_sidecars was accepted")
