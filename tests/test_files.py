"""Saving videos: names a prompt cannot abuse, and only whole MP4s get a final name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tui.engine.files import DownloadError, check_mp4, output_name, save_stream, slug
from tui.providers.base import VideoStream
from tui.sim.video import render_clip


class BytesStream(VideoStream):
    def __init__(self, data: bytes, content_length: int | None = None) -> None:
        self.data = data
        self.content_length = len(data) if content_length is None else content_length
        self.content_type = "video/mp4"
        self.closed = False

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), 4096):
            yield self.data[i:i + 4096]

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("clip") / "c.mp4"
    render_clip(path, prompt="files test", job_id="f1", seconds=0.5)
    return path.read_bytes()


def test_prompts_cannot_become_paths():
    for prompt in ["../../etc/passwd", "/abs/path", "..", "a\0b", "C:\\x", "~/.ssh/id"]:
        name = output_name(1, "wan-2.5/../x", prompt)
        assert "/" not in name and "\\" not in name and not name.startswith(".")
        assert name.endswith("_1.mp4")
    assert slug("Ünïcode fox — jumps!") == "unicode-fox-jumps"
    assert slug("!!!") == "video"
    assert len(slug("word " * 100)) <= 40


async def test_a_whole_clip_is_saved_and_checked(tmp_path, clip):
    stream = BytesStream(clip)
    saved = await save_stream(stream, tmp_path / "v.mp4")
    assert saved.size == len(clip) and (tmp_path / "v.mp4").read_bytes() == clip
    assert stream.closed and not (tmp_path / "v.mp4.part").exists()


async def test_a_short_body_never_gets_the_final_name(tmp_path, clip):
    stream = BytesStream(clip[: len(clip) // 2], content_length=len(clip))
    with pytest.raises(DownloadError, match="cut off"):
        await save_stream(stream, tmp_path / "v.mp4")
    assert not (tmp_path / "v.mp4").exists() and not (tmp_path / "v.mp4.part").exists()


async def test_garbage_and_truncated_containers_are_refused(tmp_path, clip):
    with pytest.raises(DownloadError, match="not an MP4"):
        await save_stream(BytesStream(b"<html>oops</html>" * 10), tmp_path / "a.mp4")
    # a server that lies about the length: the boxes still give it away
    with pytest.raises(DownloadError):
        await save_stream(BytesStream(clip[:-1000]), tmp_path / "b.mp4")
    whole = tmp_path / "c.mp4"
    whole.write_bytes(clip)
    check_mp4(whole)


def test_engine_modules_never_import_textual():
    import subprocess
    import sys

    code = ("import sys; sys.modules['textual'] = None\n"
            "import tui.engine, tui.cli, tui.store, tui.session, tui.providers.venice\n"
            "import tui.providers.apixo, tui.providers.acedata, tui.sim.server\n"
            "from tui.cli import build_parser; build_parser().parse_args(['list'])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert Path(__file__).exists()
