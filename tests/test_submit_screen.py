"""The submit and batch modals against the simulator: real Session, real Facade, Pilot keys."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from conftest import FAST_POLICY
from test_app import on_screen, until
from textual.app import App
from textual.widgets import Button, DataTable, Input, OptionList, Select, Static, TextArea
from textual.widgets.select import InvalidSelectValueError

from tui.app.facade import Facade
from tui.app.screens.batch import BatchScreen
from tui.app.screens.result import SubmitResult
from tui.app.screens.submit import SubmitScreen
from tui.config import load_config
from tui.jobs import JobRequest
from tui.session import open_session

KEYS = {
    "venice": ("VENICE", "sim-venice-key"),
    "apixo": ("APIXO", "sim-apixo-key"),
    "acedata": ("ACEDATA", "sim-acedata-token"),
}
KEY_VAR = {"venice": "VENICE_API_KEY", "apixo": "APIXO_API_KEY", "acedata": "ACEDATA_API_TOKEN"}
# 1x1 transparent PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


class Host(App[None]):
    """A bare app that shows one modal and keeps what it returned."""

    def __init__(self, make_screen: Callable[[], object]) -> None:
        super().__init__()
        self.make_screen = make_screen
        self.results: list[SubmitResult | None] = []

    def on_mount(self) -> None:
        self.push_screen(self.make_screen(), callback=self.results.append)


@pytest.fixture
async def make_facade(sim, monkeypatch):
    """A Facade over a real session whose configured providers all talk to the simulator."""
    async with AsyncExitStack() as stack:

        async def make(*configured: str) -> Facade:
            for name, (prefix, key) in KEYS.items():
                monkeypatch.setenv(f"{prefix}_BASE_URL", sim.url(name))
                if name in configured:
                    monkeypatch.setenv(KEY_VAR[name], key)
                else:
                    monkeypatch.delenv(KEY_VAR[name], raising=False)
            config = load_config()  # WAN_TUI_HOME is a tmp dir (conftest)
            session = await stack.enter_async_context(
                open_session(config, lock=False, policy=FAST_POLICY))
            return Facade(session)

        yield make


def shown(screen, selector: str) -> bool:
    found = list(screen.query(selector))
    return bool(found) and all(w.display for w in found)


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def pick(pilot, screen: SubmitScreen, provider: str, search: str) -> None:
    """Highlight `provider`, type `search` into the model filter, enter picks the first match."""
    providers = screen.query_one("#providers", OptionList)
    providers.highlighted = providers.get_option_index(provider)
    await until(pilot, lambda: screen.form.provider == provider and screen.form.models)
    screen.query_one("#model-search", Input).focus()
    await pilot.press(*search, "enter")
    await until(pilot, lambda: (caps := screen.form.caps) is not None and caps.provider == provider)


async def type_prompt(pilot, screen: SubmitScreen, text: str) -> None:
    screen.query_one("#prompt", TextArea).focus()
    await pilot.press(*text)


# ---------------------------------------------------------------- SubmitScreen


async def test_quote_shown_before_submit_and_nothing_queued_until_result_used(make_facade, sim):
    facade = await make_facade("venice")
    app = Host(lambda: SubmitScreen(facade))
    async with app.run_test(size=(120, 60)) as pilot:
        screen = app.screen
        assert isinstance(screen, SubmitScreen)
        await pick(pilot, screen, "venice", "preview text")
        assert screen.form.caps.id == "wan-2.5-preview-text-to-video"
        submit = screen.query_one("#submit", Button)
        assert submit.disabled  # empty prompt
        await type_prompt(pilot, screen, "a red fox")
        await until(pilot, lambda: not submit.disabled)
        # 5 s x $0.05 at the 720p default, x1.25 with audio (on by default)
        assert text_of(screen, "#price") == "price: $0.31"
        assert sim.state.counter("venice", "/api/v1/video/quote") >= 1
        assert sim.state.queue_calls == []
        screen.query_one("#duration", Select).focus()
        await pilot.press("Q")  # re-quote: the same shape is answered from the engine's cache
        await until(pilot, lambda: text_of(screen, "#price") == "price: $0.31")
        assert not submit.disabled
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.results)
    (result,) = app.results
    assert isinstance(result, SubmitResult)
    assert result.requests == [JobRequest(model="wan-2.5-preview-text-to-video", prompt="a red fox",
                                          duration="5s", provider="venice")]
    assert [q.label() for q in result.quotes] == ["$0.31"]
    assert sim.state.queue_calls == []  # the screen itself never spends
    await facade.start()
    await facade.submit(result.requests, result.quotes)  # the engine process it starts sends it
    for _ in range(600):
        if sim.state.queue_calls:
            break
        await asyncio.sleep(0.05)
    await facade.close()
    assert len(sim.state.queue_calls) == 1
    assert facade.host.lock.holder() not in (None, os.getpid())


async def test_fields_follow_the_model(make_facade):
    facade = await make_facade("venice")
    app = Host(lambda: SubmitScreen(facade))
    async with app.run_test(size=(120, 60)) as pilot:
        screen = app.screen
        await pick(pilot, screen, "venice", "preview text")
        assert shown(screen, "#aspect") and shown(screen, "#audio") and shown(screen, "#resolution")
        assert not shown(screen, "#image") and not shown(screen, "#seed")  # Venice sends no seed
        durations = screen.query_one("#duration", Select)
        assert [v for _, v in durations._options] == ["5s", "10s"]
        with pytest.raises(InvalidSelectValueError):
            durations.value = "7s"  # a duration the model does not offer cannot be chosen
        with pytest.raises(InvalidSelectValueError):
            screen.query_one("#resolution", Select).value = "4k"

        await pick(pilot, screen, "venice", "preview im")
        assert not shown(screen, "#aspect")  # image-to-video takes no aspect ratio
        assert shown(screen, "#image") and shown(screen, "#audio")

        await pick(pilot, screen, "venice", "kling")
        assert not shown(screen, "#audio")  # audio not configurable on this model
        assert shown(screen, "#aspect")
        assert [v for _, v in screen.query_one("#resolution", Select)._options[1:]] == ["1080p"]

        # the search lists every match with its type and a DEPRECATED marker
        search = screen.query_one("#model-search", Input)
        search.value = "wan 2.1"
        await pilot.pause()
        models = screen.query_one("#models", OptionList)
        assert models.option_count == 1
        line = str(models.get_option_at_index(0).prompt)
        assert "text-to-video" in line and "DEPRECATED → wan-2.5-preview-text-to-video" in line


async def test_character_count_and_over_limit_disables_submit(make_facade):
    facade = await make_facade("venice")
    app = Host(lambda: SubmitScreen(facade))
    async with app.run_test(size=(120, 60)) as pilot:
        screen = app.screen
        await pick(pilot, screen, "venice", "ltx-2")  # prompt limit 1000
        await type_prompt(pilot, screen, "a cat")
        count = screen.query_one("#prompt-count", Static)
        assert str(count.render()) == "5 / 1000 characters" and not count.has_class("over")
        submit = screen.query_one("#submit", Button)
        await until(pilot, lambda: not submit.disabled)
        screen.query_one("#prompt", TextArea).insert("x" * 1000)
        await until(pilot, lambda: count.has_class("over"))
        assert str(count.render()) == "1005 / 1000 characters"
        await until(pilot, lambda: "prompt is 1005 characters" in text_of(screen, "#error"))
        assert submit.disabled
        await pilot.press("ctrl+s")  # refused: nothing is returned
        await pilot.pause(0.1)
        assert app.results == []


async def test_escape_returns_none(make_facade):
    facade = await make_facade("venice")
    app = Host(lambda: SubmitScreen(facade))
    async with app.run_test(size=(120, 60)) as pilot:
        await until(pilot, lambda: app.screen.form.models)
        await pilot.press("escape")
        await until(pilot, lambda: app.results)
    assert app.results == [None]


async def test_escape_asks_before_throwing_away_a_typed_prompt(make_facade):
    from textual.widgets import TextArea

    from tui.app.screens.confirm import ConfirmScreen

    facade = await make_facade("venice")
    app = Host(lambda: SubmitScreen(facade))
    async with app.run_test(size=(120, 60)) as pilot:
        await until(pilot, lambda: app.screen.form.models)
        app.screen.query_one("#prompt", TextArea).text = "a lighthouse in a storm at dusk"
        await pilot.press("escape")
        await until(pilot, lambda: on_screen(app, ConfirmScreen))
        assert "Discard this prompt?" in app.screen.title_text
        await pilot.press("n")  # keep it: back in the form, the prompt intact
        await until(pilot, lambda: on_screen(app, SubmitScreen))
        assert app.screen.query_one("#prompt", TextArea).text.startswith("a lighthouse")
        assert app.results == []
        await pilot.press("escape")
        await until(pilot, lambda: on_screen(app, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: app.results)
    assert app.results == [None]


async def test_unconfigured_provider_cannot_be_selected(make_facade):
    facade = await make_facade("venice")
    app = Host(lambda: SubmitScreen(facade))
    async with app.run_test(size=(120, 60)) as pilot:
        screen = app.screen
        providers = screen.query_one("#providers", OptionList)
        apixo = providers.get_option("apixo")
        assert apixo.disabled and "not configured: set APIXO_API_KEY" in str(apixo.prompt)
        assert providers.get_option("acedata").disabled
        providers.focus()
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        providers.highlighted = providers.get_option_index("apixo")
        await pilot.pause()
        assert screen.form.provider == "venice"
    # re-submitting an APIXO job without an APIXO key: the form says so, nothing is picked
    initial = JobRequest(model="wan-2-5-t2v", provider="apixo", prompt="waves")
    app = Host(lambda: SubmitScreen(facade, initial))
    async with app.run_test(size=(120, 60)) as pilot:
        screen = app.screen
        await until(pilot, lambda: "not configured" in text_of(screen, "#model-info"))
        assert "apixo is not configured (set APIXO_API_KEY)" in text_of(screen, "#model-info")
        assert screen.form.provider == "venice" and screen.form.caps is None
        assert screen.query_one("#submit", Button).disabled


async def test_apixo_shows_an_estimate_and_its_options(make_facade, sim, tmp_path):
    facade = await make_facade("apixo", "acedata")
    app = Host(lambda: SubmitScreen(facade))
    async with app.run_test(size=(120, 60)) as pilot:
        screen = app.screen
        assert screen.form.provider == "apixo"  # Venice is not configured: first configured one
        await pick(pilot, screen, "apixo", "5-t2v")
        assert shown(screen, "#seed") and shown(screen, "#aspect")
        assert shown(screen, "#opt-provider") and shown(screen, "#opt-enable_prompt_expansion")
        # the choices come from the adapter's OptionSpec, not from a table in the form
        routing = [v for _, v in screen.query_one("#opt-provider", Select)._options[1:]]
        apixo = next(info for info in facade.providers() if info.name == "apixo")
        assert routing == list(apixo.options["provider"].choices) == [
            "auto", "value", "official"]
        assert not shown(screen, "#audio")
        screen.query_one("#duration", Select).value = "10s"
        screen.query_one("#resolution", Select).value = "720p"
        await type_prompt(pilot, screen, "waves at dusk")
        submit = screen.query_one("#submit", Button)
        await until(pilot, lambda: not submit.disabled)
        assert text_of(screen, "#price") == "price: ~$0.80 (estimate)"
        screen.query_one("#opt-enable_prompt_expansion").toggle()
        await until(pilot, lambda: not submit.disabled)
        submit.press()
        await until(pilot, lambda: app.results)
    (result,) = app.results
    req = result.requests[0]
    assert (req.provider, req.model, req.duration, req.resolution) == (
        "apixo", "wan-2-5-t2v", "10s", "720p")
    assert req.options == {"enable_prompt_expansion": True}  # untouched options not sent
    assert result.quotes[0].estimate
    assert sim.state.queue_calls == [] and sim.state.counter("apixo", "/api/v1") == 0


async def test_apixo_refuses_a_local_image_with_its_own_message(make_facade, tmp_path):
    png = tmp_path / "frame.png"
    png.write_bytes(PNG)
    facade = await make_facade("apixo")
    app = Host(lambda: SubmitScreen(facade))
    async with app.run_test(size=(120, 60)) as pilot:
        screen = app.screen
        await pick(pilot, screen, "apixo", "5-i2v")
        assert not shown(screen, "#aspect")
        await type_prompt(pilot, screen, "the frame comes alive")
        screen.query_one("#image", Input).value = str(png)
        await until(pilot, lambda: "APIXO fetches the image itself" in text_of(screen, "#error"))
        assert screen.query_one("#submit", Button).disabled
        screen.query_one("#image", Input).value = "https://example.com/frame.png"
        await until(pilot, lambda: not screen.query_one("#submit", Button).disabled)


async def test_image_path_checked_on_the_spot(make_facade, tmp_path):
    facade = await make_facade("venice")
    app = Host(lambda: SubmitScreen(facade))
    async with app.run_test(size=(120, 60)) as pilot:
        screen = app.screen
        await pick(pilot, screen, "venice", "preview im")
        await type_prompt(pilot, screen, "the photo moves")
        submit = screen.query_one("#submit", Button)
        await until(pilot, lambda: "is image-to-video: give an image" in text_of(screen, "#error"))
        image = screen.query_one("#image", Input)
        image.value = str(tmp_path / "missing.png")
        status = screen.query_one("#image-status", Static)
        await until(pilot, lambda: "no such file" in str(status.render()))
        assert status.has_class("bad") and submit.disabled
        assert "no such file" in text_of(screen, "#error")
        (tmp_path / "notes.txt").write_text("not an image")
        image.value = str(tmp_path / "notes.txt")
        await until(pilot, lambda: "not a PNG, JPEG, WebP or GIF" in str(status.render()))
        (tmp_path / "frame.png").write_bytes(PNG)
        image.value = str(tmp_path / "frame.png")
        await until(pilot, lambda: not submit.disabled)
        assert "local image/png" in str(status.render())
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.results)
    assert app.results[0].requests[0].image_url.startswith("data:image/png;base64,")


async def test_initial_request_prefills_every_field(make_facade):
    initial = JobRequest(
        model="wan2.6-r2v", provider="acedata", prompt="the same scene, at night",
        duration="10s", resolution="720P", negative_prompt="blur", audio=False, seed=42,
        options={"reference_video_urls": ["https://example.com/a.mp4",
                                          "https://example.com/b.mp4"],
                 "shot_type": "multi", "prompt_extend": False})
    facade = await make_facade("venice", "acedata")
    app = Host(lambda: SubmitScreen(facade, initial))
    async with app.run_test(size=(120, 60)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.form.caps is not None)
        assert screen.form.provider == "acedata" and screen.form.caps.id == "wan2.6-r2v"
        assert screen.query_one("#prompt", TextArea).text == initial.prompt
        assert screen.query_one("#duration", Select).value == "10s"
        assert screen.query_one("#resolution", Select).value == "720P"
        assert screen.query_one("#negative", Input).value == "blur"
        assert screen.query_one("#seed", Input).value == "42"
        assert screen.query_one("#audio").value is False
        assert screen.query_one("#opt-reference_video_urls", Input).value == (
            "https://example.com/a.mp4, https://example.com/b.mp4")
        assert screen.query_one("#opt-shot_type", Select).value == "multi"
        submit = screen.query_one("#submit", Button)
        await until(pilot, lambda: not submit.disabled)
        assert "(estimate)" in text_of(screen, "#price")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.results)
    assert app.results[0].requests == [initial]


# ---------------------------------------------------------------- BatchScreen


def write_lines(path: Path, *lines: dict | str) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


async def test_batch_of_good_lines_shows_total_and_returns_all(make_facade, sim, tmp_path):
    batch = write_lines(
        tmp_path / "jobs.jsonl",
        "# three clips",
        {"model": "wan-2.5-preview-text-to-video", "prompt": "one", "duration": "5s"},
        {"model": "wan-2.5-preview-text-to-video", "prompt": "two", "duration": "10s"},
        {"provider": "apixo", "model": "wan-2-5-t2v", "prompt": "three", "resolution": "720p"},
    )
    facade = await make_facade("venice", "apixo")
    app = Host(lambda: BatchScreen(facade, batch))
    async with app.run_test(size=(140, 50)) as pilot:
        screen = app.screen
        submit = screen.query_one("#submit", Button)
        await until(pilot, lambda: not submit.disabled)
        table = screen.query_one("#lines", DataTable)
        assert table.row_count == 3
        assert [str(c) for c in table.get_row_at(2)] == [
            "4", "apixo", "wan-2-5-t2v", "three", "~$0.40 (estimate)"]
        # $0.3125 + $0.625 (audio on by default) + ~$0.40: any estimate makes the total one
        assert text_of(screen, "#total") == "3 jobs · total ~$1.34 (estimate)"
        assert sim.state.queue_calls == []
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.results)
    (result,) = app.results
    assert [r.prompt for r in result.requests] == ["one", "two", "three"]
    assert len(result.quotes) == 3 and result.total_usd == pytest.approx(1.3375)


async def test_batch_with_a_bad_line_cannot_be_submitted(make_facade, tmp_path):
    batch = write_lines(
        tmp_path / "jobs.jsonl",
        {"model": "wan-2.5-preview-text-to-video", "prompt": "fine"},
        {"model": "wan-2.5-preview-text-to-video", "prompt": "bad", "resolution": "4k"},
    )
    corrupt = write_lines(tmp_path / "corrupt.jsonl",
                          {"model": "wan-2.5-preview-text-to-video", "prompt": "ok"},
                          '{"model": "wan-2.5-preview-text-to-video", "prompt": ')
    facade = await make_facade("venice")
    app = Host(lambda: BatchScreen(facade))
    async with app.run_test(size=(140, 50)) as pilot:
        screen = app.screen
        path = screen.query_one("#path", Input)
        assert screen.focused is path
        path.value = str(batch)  # typing a long tmp path key by key only slows the test
        await pilot.press("enter")
        status = screen.query_one("#status", Static)
        await until(pilot, lambda: "line 2:" in str(status.render()))
        assert "resolution 4k is not offered" in str(status.render())
        table = screen.query_one("#lines", DataTable)
        assert "line 2: resolution 4k" in str(table.get_row_at(1)[4])
        assert screen.query_one("#submit", Button).disabled
        await pilot.press("ctrl+s")
        path.value = str(corrupt)
        await pilot.press("enter")
        await until(pilot, lambda: "line 2: not valid JSON" in str(status.render()))
        assert screen.query_one("#submit", Button).disabled
        await pilot.press("ctrl+s", "escape")
        await until(pilot, lambda: app.results)
    assert app.results == [None]


def test_the_form_imports_no_adapter():
    """The form builds provider fields from OptionSpec descriptions, not adapter modules."""
    code = ("import sys, tui.app.screens.submit\n"
            "bad = [m for m in sys.modules if m.startswith(('tui.providers.apixo',"
            " 'tui.providers.acedata', 'tui.providers.venice'))]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""
