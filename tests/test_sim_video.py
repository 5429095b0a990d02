"""The simulator's clips are real H.264 MP4s that decode to the expected frames."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from tui.sim.video import BAND, GLYPH_H, text_mask
from tui.sim.video import render_clip as render


def decode(path: Path) -> tuple[av.video.stream.VideoStream, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        return stream, frames


def test_clip_decodes_to_the_expected_frames(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    size, digest = render(path, prompt="A fox in the snow", job_id="job-1", seconds=2.0)
    assert size == path.stat().st_size > 100_000
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    stream, frames = decode(path)
    assert stream.codec_context.name == "h264"
    assert (stream.codec_context.width, stream.codec_context.height) == (320, 180)
    assert len(frames) == 48
    assert frames[0].shape == (180, 320, 3)
    # The prompt is drawn in white on the black top band; the bars move between frames.
    band = frames[0][:BAND].max(axis=2)
    assert (band > 200).sum() > 100 and (band < 40).sum() > 1000
    assert not np.array_equal(frames[0][BAND:-BAND], frames[10][BAND:-BAND])
    assert not path.with_name(path.name + ".part").exists()


def test_other_lengths_and_sizes(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    render(path, prompt="x", job_id="j", seconds=1.0, width=256, height=144, fps=12)
    stream, frames = decode(path)
    assert len(frames) == 12 and frames[0].shape == (144, 256, 3)


def test_tiny_clip_is_under_100_kb(tmp_path: Path) -> None:
    path = tmp_path / "tiny.mp4"
    size, _ = render(path, prompt="moderated", job_id="job-2", seconds=2.0, tiny=True)
    assert size < 100_000
    assert len(decode(path)[1]) == 48


def test_every_job_has_unique_bytes(tmp_path: Path) -> None:
    digests = {
        render(tmp_path / f"{i}.mp4", prompt="same prompt", job_id=f"job-{i}", seconds=1.0)[1]
        for i in range(3)
    }
    assert len(digests) == 3


@pytest.mark.parametrize(("text", "width"), [("AB", 12), ("", 0), ("~", 6)])
def test_text_mask(text: str, width: int) -> None:
    mask = text_mask(text)
    assert mask.size == (width, GLYPH_H)
    if text == "~":  # unknown characters are drawn as '?'
        assert mask.tobytes() == text_mask("?").tobytes()


def test_text_is_upper_cased_and_scaled() -> None:
    assert text_mask("abc").tobytes() == text_mask("ABC").tobytes()
    assert text_mask("A", scale=2).size == (12, 2 * GLYPH_H)


def test_dark_clip_is_nearly_black_at_normal_size(tmp_path: Path) -> None:
    path = tmp_path / "dark.mp4"
    size, _ = render(path, prompt="moderated", job_id="job-3", seconds=1.0, dark=True)
    assert size > 100_000
    _, frames = decode(path)
    assert all(frame.mean() < 30 for frame in frames)


def test_audio_track_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "sound.mp4"
    render(path, prompt="with sound", job_id="job-4", seconds=1.0, audio=True)
    with av.open(str(path)) as container:
        (audio,) = container.streams.audio
        assert audio.codec_context.name == "aac"
        assert float(container.duration / 1_000_000) == pytest.approx(1.0, abs=0.1)


def test_spoiled_clip_keeps_its_boxes_but_does_not_decode(tmp_path: Path) -> None:
    from tui.engine.files import check_mp4

    path = tmp_path / "spoiled.mp4"
    render(path, prompt="spoiled", job_id="job-5", seconds=1.0, spoil=True)
    check_mp4(path)  # the container check passes...
    with pytest.raises(av.FFmpegError), av.open(str(path)) as container:
        next(container.decode(video=0))  # ...but no frame decodes


def test_clip_shape_follows_the_request() -> None:
    from tui.sim.state import clip_shape

    venice = clip_shape({"duration": "10s", "resolution": "720p", "audio": True},
                        frozenset(), 1.0)
    assert (venice["seconds"], venice["width"], venice["height"]) == (10.0, 1280, 720)
    assert venice["audio"] and venice["fps"] == 2  # 24 frames of budget over 10 s, rounded
    portrait = clip_shape({"input": {"duration": 5, "resolution": "1080P",
                                     "aspect_ratio": "9:16"}}, frozenset(), 1.0)
    assert (portrait["width"], portrait["height"]) == (1080, 1920)
    less = clip_shape({"duration": "10s", "resolution": "1080p", "audio": True},
                      frozenset({"less"}), 1.0)
    assert (less["seconds"], less["width"], less["audio"]) == (5.0, 320, False)
    assert clip_shape({}, frozenset({"undecodable"}), 2.0)["spoil"]
