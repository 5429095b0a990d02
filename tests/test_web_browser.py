"""The web gallery in a real browser: Debian's Chromium (/usr/bin/chromium, installed by
.ci/system-packages) driven by Playwright, against a real `wan-tui serve` over a history the
real CLI filled from the simulator (whose clips are H.264 MP4s, which this Chromium plays).

Playwright's own browser download is never used: `executable_path` names Debian's build.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from conftest import sim_env
from web_support import listed, run_batch, serving, wan

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), "Chromium is missing: run .ci/system-packages as root"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox",
                  "--disable-gpu", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(str(exc)))
    yield tab
    context.close()
    assert not problems, problems  # no script error, ever


FOXES = ["a red fox in fresh snow", "a red fox at dusk", "a red fox by a frozen river"]
BOATS = ["a paper boat on a gutter stream", "a paper boat in the rain"]


@pytest.fixture
def env(sim, tmp_path):
    env = sim_env(sim, tmp_path / "home")
    run_batch(env, FOXES)  # batch 1: jobs 1-3
    run_batch(env, BOATS)  # batch 4: jobs 4-5
    return env


def card_ids(page) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all(".card", "cs => cs.map(c => c.dataset.id)")]


def filter_to(page, text: str, expect: int) -> None:
    page.fill("#filter", text)
    page.press("#filter", "Enter")
    page.wait_for_function(f"document.querySelectorAll('.card').length === {expect}"
                           " && !document.getElementById('more').textContent.includes('scroll')")


def current_time(page, selector: str) -> float:
    return float(page.eval_on_selector(selector, "v => v.currentTime"))


def wait_playing(page, selector: str, beyond: float) -> None:
    page.wait_for_function(
        f"(() => {{ const v = document.querySelector({selector!r});"
        f" return v && !v.paused && v.currentTime > {beyond} && !v.error; }})()",
        timeout=15_000)


def test_the_grid_shows_every_finished_job_of_a_filter(env, page):
    with serving(env) as served:
        page.goto(served.url)
        page.wait_for_selector(".card")
        assert page.url == served.base + "/"  # the token left the address bar
        assert sorted(card_ids(page)) == [1, 2, 3, 4, 5]
        assert page.text_content("#count") == "5 videos"
        filter_to(page, "fox", 3)
        assert sorted(card_ids(page)) == [1, 2, 3]
        filter_to(page, "batch:4", 2)
        assert sorted(card_ids(page)) == [4, 5]
        filter_to(page, "paper rain", 1)
        assert card_ids(page) == [5]
        card = page.locator(".card[data-id='5']")
        assert "a paper boat in the rain" in card.inner_text()
        assert "wan-2.5-preview-text-to-video" in card.inner_text()
        assert "$" in card.inner_text() and "fps" in card.inner_text()
        # every poster is a real picture the server decoded from the job's video
        page.wait_for_function("[...document.querySelectorAll('.card img')]"
                               ".every(i => i.complete && i.naturalWidth > 0)")
        filter_to(page, "", 5)
        page.select_option("#sort", "created-asc")
        page.wait_for_function("document.querySelector('.card')?.dataset.id === '1'")
        assert card_ids(page) == [1, 2, 3, 4, 5]
        page.fill("#filter", "state:bogus")
        page.press("#filter", "Enter")
        page.wait_for_function("document.getElementById('problem').textContent"
                               ".includes('unknown state')")


def test_a_video_plays_and_seeks(env, page):
    with serving(env) as served:
        page.goto(served.url)
        page.wait_for_selector(".card.current")
        page.keyboard.press("Space")  # plays the card under the cursor, in place
        wait_playing(page, ".card.current video", 0.3)
        video = ".card.current video"
        page.eval_on_selector(video, "v => { v.currentTime = 3.5; }")  # a range request
        page.wait_for_function(f"(() => {{ const v = document.querySelector({video!r});"
                               " return !v.seeking && v.currentTime >= 3.5; })()")
        wait_playing(page, video, 3.7)  # and it goes on from there
        page.keyboard.press("Space")
        page.wait_for_function(f"document.querySelector({video!r}).paused")
        # the detail view: its own player, the full prompt and the job's timeline
        page.keyboard.press("Enter")
        page.wait_for_selector("#detail:not([hidden])")
        page.wait_for_function("document.querySelectorAll('#detail-timeline tr').length >= 4")
        timeline = page.inner_text("#detail-timeline")
        assert "submitting" in timeline and "done" in timeline
        page.keyboard.press("Space")
        wait_playing(page, "#detail-video", 0.3)
        page.keyboard.press("Escape")
        page.wait_for_selector("#detail", state="hidden")


def test_keyboard_picks_persist_and_show_in_list_json(env, page):
    with serving(env) as served:
        page.goto(served.url)
        page.wait_for_selector(".card.current")
        first, second = card_ids(page)[:2]  # newest first: 5, 4
        page.keyboard.press("s")  # star the first
        page.keyboard.press("j")
        page.keyboard.press("x")  # reject the second
        page.wait_for_selector(f".card[data-id='{second}'][data-pick='reject']")
        page.wait_for_selector(f".card[data-id='{first}'][data-pick='star']")
        page.reload()
        page.wait_for_selector(".card")
        assert page.get_attribute(f".card[data-id='{first}']", "data-pick") == "star"
        assert page.get_attribute(f".card[data-id='{second}']", "data-pick") == "reject"
        assert page.inner_text(f".card[data-id='{first}'] .pickmark") == "★"
        filter_to(page, "pick:star", 1)
        assert card_ids(page) == [first]
        filter_to(page, "pick:none", 3)
        # the same key again clears the pick
        filter_to(page, "", 5)
        page.keyboard.press("s")
        page.wait_for_selector(f".card[data-id='{first}'][data-pick='none']")
        page.keyboard.press("s")
        page.wait_for_selector(f".card[data-id='{first}'][data-pick='star']")
    jobs = {j["id"]: j for j in listed(env)}
    assert jobs[first]["pick"] == "star" and jobs[second]["pick"] == "reject"
    assert all(jobs[n]["pick"] is None for n in jobs if n not in (first, second))
    assert abs(jobs[first]["picked_at"] - time.time()) < 120
    assert [j["id"] for j in listed(env, "-q", "pick:star")] == [first]
    lines = wan(env, "list", "-q", "pick:star").stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"#{first}  ✔ done ★  ")
    shown = wan(env, "show", str(first)).stdout
    assert "picked: star" in shown  # the timeline keeps when it was kept


def test_a_job_finishing_appears_within_two_seconds(env, page):
    with serving(env) as served:
        page.goto(served.url)
        page.wait_for_selector(".card")
        assert len(card_ids(page)) == 5
        run_batch(env, ["a lighthouse keeper waves at a passing ship"])  # job 6, done
        finished = time.monotonic()
        page.wait_for_selector(".card[data-id='6']", timeout=2_000)
        assert time.monotonic() - finished < 2.0
        assert card_ids(page)[0] == 6  # newest first: at the top
        assert page.text_content("#count") == "6 videos"
        # a filter that does not admit it keeps it out
        filter_to(page, "fox", 3)
        run_batch(env, ["a kettle on a stove"])
        page.wait_for_function("document.body.dataset.live === 'yes'")
        page.wait_for_timeout(1_000)
        assert sorted(card_ids(page)) == [1, 2, 3]


def test_takes_side_by_side(env, page):
    with serving(env) as served:
        page.goto(served.url)
        page.wait_for_selector(".card.current")
        page.keyboard.press("c")
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("c")
        assert page.text_content("#compare-button") == "compare (2)"
        page.keyboard.press("C")
        page.wait_for_selector("#compare:not([hidden])")
        assert page.locator(".pane").count() == 2
        assert [int(x) for x in page.eval_on_selector_all(
            ".pane", "ps => ps.map(p => p.dataset.id)")] == [5, 3]
        page.keyboard.press("Space")  # all of them play at once
        for n in (1, 2):
            wait_playing(page, f".pane:nth-child({n}) video", 0.3)
        page.keyboard.press("5")  # every take to its middle
        page.wait_for_function("[...document.querySelectorAll('.pane video')]"
                               ".every(v => v.currentTime >= 2.4)")
        page.keyboard.press("l")
        page.keyboard.press("s")  # star the take in focus: the second
        page.wait_for_selector(".pane[data-id='3'][data-pick='star']")
        page.keyboard.press("Escape")
        page.wait_for_selector("#compare", state="hidden")
    assert {j["id"]: j["pick"] for j in listed(env)}[3] == "star"


def test_an_export_opened_from_disk_shows_every_job_and_plays(env, page, tmp_path):
    out = tmp_path / "for-the-client"
    done = wan(env, "export", "fox", str(out))
    assert done.returncode == 0, done.stderr
    page.goto(Path(out / "index.html").as_uri())
    page.wait_for_selector(".card")
    assert sorted(card_ids(page)) == [1, 2, 3]
    page.wait_for_function("[...document.querySelectorAll('.card img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    page.keyboard.press("Space")
    wait_playing(page, ".card.current video", 0.3)
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#detail-timeline tr').length >= 4")
