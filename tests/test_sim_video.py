"""The simulator's clips are real H.264 MP4s that decode to the expected frames."""

from __future__ import annotations

import hashlib
import time
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


def test_render_is_fast(tmp_path: Path) -> None:
    # The budget is ~0.3 s a clip on 2 cores; this only guards against a large regression
    # (timings belong in benchmarks), so it takes the best of three.
    best = min(_timed(tmp_path / f"{i}.mp4") for i in range(3))
    assert best < 1.0


def _timed(path: Path) -> float:
    started = time.perf_counter()
    render(path, prompt="timing", job_id=path.stem, seconds=2.0)
    return time.perf_counter() - started


@pytest.mark.parametrize(("text", "width"), [("AB", 12), ("", 0), ("~", 6)])
def test_text_mask(text: str, width: int) -> None:
    mask = text_mask(text)
    assert mask.shape == (GLYPH_H, width)
    if text == "~":  # unknown characters are drawn as '?'
        assert np.array_equal(mask, text_mask("?"))


def test_text_is_upper_cased_and_scaled() -> None:
    assert np.array_equal(text_mask("abc"), text_mask("ABC"))
    assert text_mask("A", scale=2).shape == (2 * GLYPH_H, 12)
