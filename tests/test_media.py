"""Verification by decoding, the facts of every video, and what they say about the request.

Files are real MP4s from the simulator's encoder; engine tests run against the simulator on
a loopback socket and count what it was asked (downloads, remote deletes).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import T2V

from tui.engine.files import RejectedCopy, save_stream
from tui.jobs import JobRequest, JobState, VideoFacts
from tui.media.facts import moderation_hint, shortfalls, warnings
from tui.media.probe import UndecodableError, probe
from tui.sim.video import render_clip
from tui.store import Store


def req(prompt: str = "a red fox runs through snow", **kw) -> JobRequest:
    kw.setdefault("model", T2V)
    kw.setdefault("duration", "5s")
    return JobRequest(prompt=prompt, **kw)


def facts(**kw) -> VideoFacts:
    base = dict(width=1280, height=720, duration_s=5.0, fps=24.0, video_codec="h264",
                audio_codec="aac", bitrate=1_000_000, dark=0.0, motion=20.0)
    return VideoFacts(**{**base, **kw})


# ------------------------------------------------------------------ probe


def test_probe_reads_the_facts_of_a_real_clip(tmp_path: Path) -> None:
    path = tmp_path / "c.mp4"
    size, _ = render_clip(path, prompt="facts", job_id="p1", seconds=3.0, width=640,
                          height=360, fps=8, audio=True)
    video = probe(path)
    assert (video.width, video.height, video.fps) == (640, 360, 8.0)
    assert video.duration_s == pytest.approx(3.0, abs=0.05)
    assert (video.video_codec, video.audio_codec) == ("h264", "aac")
    assert video.bitrate == pytest.approx(size * 8 / 3.0, rel=0.05)
    assert video.dark == 0.0 and video.motion > 5  # bars roll: frames differ


def test_probe_without_audio_says_none(tmp_path: Path) -> None:
    path = tmp_path / "c.mp4"
    render_clip(path, prompt="silent", job_id="p2", seconds=1.0)
    assert probe(path).audio_codec is None


def test_a_dark_clip_is_measured_dark(tmp_path: Path) -> None:
    path = tmp_path / "c.mp4"
    render_clip(path, prompt="dark", job_id="p3", seconds=1.0, dark=True)
    video = probe(path)
    assert video.dark == 1.0
    assert moderation_hint(video, path.stat().st_size) == "mostly black: possibly moderated"


@pytest.mark.parametrize("content", [b"", b"<html>not a video</html>" * 50, None])
def test_undecodable_files_are_refused_with_one_line(tmp_path: Path, content) -> None:
    path = tmp_path / "bad.mp4"
    if content is None:  # whole MP4 boxes, frames that do not decode
        render_clip(path, prompt="spoiled", job_id="p4", seconds=1.0, spoil=True)
    else:
        path.write_bytes(content)
    with pytest.raises(UndecodableError, match="^decoding failed: ") as caught:
        probe(path)
    assert "\n" not in str(caught.value)


async def test_save_stream_keeps_an_undecodable_copy_under_a_suspect_name(tmp_path: Path):
    from test_files import BytesStream

    clip = tmp_path / "spoiled.mp4"
    render_clip(clip, prompt="spoiled", job_id="p5", seconds=1.0, spoil=True)
    data = clip.read_bytes()
    dest = tmp_path / "out" / "video_7.mp4"
    with pytest.raises(RejectedCopy, match="decoding failed") as caught:
        await save_stream(BytesStream(data), dest)
    kept = caught.value.kept
    assert kept.name == "video_7.undecodable.mp4" and kept.read_bytes() == data
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    # a good copy later takes the final name and ends the suspicion
    good = tmp_path / "good.mp4"
    render_clip(good, prompt="good", job_id="p6", seconds=1.0)
    saved = await save_stream(BytesStream(good.read_bytes()), dest)
    assert saved.video is not None and saved.video.width == 320
    assert dest.exists() and not kept.exists()


# ------------------------------------------------------------------ rules


def test_shortfalls_compare_only_what_was_asked() -> None:
    asked = req(duration="10s", resolution="1080p", audio=True)
    assert shortfalls(asked, facts(width=1920, height=1080, duration_s=9.9)) == []
    assert shortfalls(asked, facts(width=320, height=180, duration_s=5.0, audio_codec=None)) == [
        "asked 1080p, got 320x180", "asked 10 s, got 5.0 s", "asked for audio, got none"]
    # portrait 1080p is 1080 wide; no resolution or audio asked: nothing to compare
    assert shortfalls(req(resolution="1080p"), facts(width=1080, height=1920)) == []
    assert shortfalls(req(), facts(width=320, height=180, audio_codec=None)) == []


def test_moderation_hint_black_frozen_or_small() -> None:
    assert moderation_hint(facts(), 5_000_000) is None
    assert moderation_hint(facts(dark=0.8), 5_000_000) == "mostly black: possibly moderated"
    assert moderation_hint(facts(motion=0.1), 5_000_000) == "frozen: possibly moderated"
    assert moderation_hint(facts(motion=None), 5_000_000) is None  # unknown is not frozen
    assert moderation_hint(None, 50_000) == "suspiciously small: possibly moderated"
    assert warnings(req(resolution="720p"), facts(height=480, width=854), 50_000) == [
        "asked 720p, got 854x480", "suspiciously small: possibly moderated"]


async def test_store_keeps_video_facts_and_rejects(store: Store) -> None:
    (job,) = await store.add_jobs([req()])
    video = facts()
    await store.update(job.id, video=video, rejects={"ab" * 32: 2})
    again = await store.get(job.id)
    assert again.video == video and again.rejects == {"ab" * 32: 2}
    assert (await store.get(job.id)).video.to_dict()["audio_codec"] == "aac"


# ------------------------------------------------------------------ engine + simulator


async def _run(engine, requests, timeout: float = 60.0):
    await engine.start(resume=False)
    jobs = await engine.add(requests)
    await asyncio.wait_for(engine.wait_idle(), timeout)
    return [await engine.store.get(j.id) for j in jobs]


async def test_a_finished_job_holds_the_facts_of_its_file(sim, make_engine):
    engine = await make_engine(sim)
    (job,) = await _run(engine, [req("facts please", duration="5s", resolution="720p",
                                     audio=True)])
    assert job.state == JobState.DONE
    assert job.video == probe(Path(job.file))
    # the simulator honours the request: 720p, 5 s, an audio track (1 s of frames at 5 fps)
    assert (job.video.width, job.video.height) == (1280, 720)
    assert job.video.duration_s == pytest.approx(5.0, abs=0.1) and job.video.fps == 5.0
    assert (job.video.video_codec, job.video.audio_codec) == ("h264", "aac")
    assert warnings(job.request, job.video, job.bytes) == []


async def test_a_result_short_of_the_request_is_flagged(sim, make_engine):
    engine = await make_engine(sim)
    (job,) = await _run(engine, [req("[sim:less] cheap", duration="10s", resolution="1080p",
                                     audio=True)])
    assert job.state == JobState.DONE
    assert shortfalls(job.request, job.video) == [
        "asked 1080p, got 320x180", "asked 10 s, got 5.0 s", "asked for audio, got none"]
    done = (await engine.store.events(job.id))[-1]
    assert "asked 1080p, got 320x180" in done.detail


async def test_a_black_clip_is_flagged_possibly_moderated(sim, make_engine):
    engine = await make_engine(sim)
    (job,) = await _run(engine, [req("[sim:black] night")])
    assert job.state == JobState.DONE and job.bytes > 100 * 1024  # not the size heuristic
    assert job.video.dark == 1.0
    assert "mostly black: possibly moderated" in (await engine.store.events(job.id))[-1].detail


async def test_an_undecodable_file_is_kept_settled_and_never_deleted_remotely(
        sim, make_engine, tmp_path):
    engine = await make_engine(sim, delete_after_download=True)
    (job,) = await _run(engine, [req("[sim:undecodable] broken")])
    assert job.state == JobState.FAILED
    assert job.error.startswith("decoding failed")
    kept = Path(job.file)
    assert kept.name.endswith(".undecodable.mp4") and kept.exists()
    assert job.sha256 == sim.state.job(job.remote_id).sha256 and job.rejects == {job.sha256: 3}
    assert not list((tmp_path / "videos").glob(f"*_{job.id}.mp4"))  # no final name
    remote = sim.state.job(job.remote_id)
    assert remote.downloads == 3  # the same bytes three times, then it stopped
    assert not sim.state.complete_calls and not remote.deleted
    await engine.stop()
    # a restart does not fetch it again either
    engine2 = await make_engine(sim, delete_after_download=True)
    await engine2.start()
    await asyncio.wait_for(engine2.wait_idle(), 10)
    assert remote.downloads == 3 and not sim.state.complete_calls


async def test_a_whole_body_that_is_not_an_mp4_is_kept_and_counted(tmp_path: Path):
    from test_files import BytesStream

    html = b"<html><body>rate limited, try later</body></html>" * 40
    dest = tmp_path / "video_9.mp4"
    with pytest.raises(RejectedCopy, match="not an MP4") as caught:
        await save_stream(BytesStream(html), dest)
    assert caught.value.kept.name == "video_9.not-a-video.mp4"
    assert caught.value.kept.read_bytes() == html and caught.value.size == len(html)
    # a cut-off body (fewer bytes than announced) is the network's fault: not kept
    with pytest.raises(Exception, match="cut off") as cut:
        await save_stream(BytesStream(html[:100], content_length=len(html)), dest)
    assert not isinstance(cut.value, RejectedCopy)
