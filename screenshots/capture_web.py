"""Screenshots of the web gallery (`wan-tui serve`) in headless Chromium, saved next to this file.

    python screenshots/capture_web.py

Fills a throwaway history from the in-process simulator with the real CLI (`wan-tui batch`),
stars and rejects a few takes, runs `wan-tui serve`, and photographs the grid and the
comparison view with Debian's Chromium (/usr/bin/chromium) through Playwright. No key, no
network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from tui.sim.server import SimServer  # noqa: E402
from tui.sim.state import Faults, SimConfig  # noqa: E402

MODEL = "wan-2.5-preview-text-to-video"
TAKES = [
    ("A red fox trots through fresh snow at dawn, breath steaming, low tracking shot", 1),
    ("A red fox trots through fresh snow at dawn, breath steaming, low tracking shot", 2),
    ("A red fox trots through fresh snow at dawn, breath steaming, low tracking shot", 3),
    ("A paper boat sails down a gutter stream after a storm, macro lens", 4),
    ("A paper boat sails down a gutter stream after a storm, macro lens", 5),
    ("A lighthouse keeper waves at a passing ship, golden hour, 35 mm film", 6),
    ("A lighthouse keeper waves at a passing ship, golden hour, 35 mm film", 7),
    ("Steam rises from a kettle on a wood stove, slow push-in", 8),
]


def main() -> None:
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="wan-tui-web-shots-"))
    faults = Faults(retrieve_limit_per_min=100_000, queue_limit_per_min=100_000)
    with SimServer.running(SimConfig(mean_s=0.3, seed=11, faults=faults)) as sim:
        env = {**os.environ, "WAN_TUI_HOME": str(home), "VENICE_API_KEY": "sim-venice-key",
               "VENICE_BASE_URL": sim.url("venice"), "WAN_TUI_TIME_SCALE": "0.02"}
        lines = "\n".join(json.dumps({"model": MODEL, "prompt": p, "duration": "5s",
                                      "resolution": "720p", "seed": s}) for p, s in TAKES)
        subprocess.run([sys.executable, "-m", "tui.cli", "batch", "-", "--yes", "--quiet",
                        "--follow"], input=lines, env=env, text=True, check=True)
    serve = subprocess.Popen([sys.executable, "-m", "tui.cli", "serve", "--port", "0"],
                             env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        url = serve.stdout.readline().split()[-1]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.goto(url)
            page.wait_for_selector(".card.current")
            for key in ("j", "s", "j", "x", "j", "j", "s"):  # a few verdicts to show
                page.keyboard.press(key)
            page.wait_for_selector(".card[data-pick='star']")
            page.keyboard.press("g")
            page.wait_for_function("[...document.querySelectorAll('.card img')]"
                                   ".every(i => i.complete && i.naturalWidth > 0)")
            page.keyboard.press("k")
            page.keyboard.press("k")
            page.screenshot(path=str(HERE / "web-gallery.png"))
            for key in ("c", "j", "c", "j", "c", "C"):
                page.keyboard.press(key)
            page.wait_for_selector("#compare:not([hidden])")
            page.wait_for_function("[...document.querySelectorAll('.pane video')]"
                                   ".every(v => v.readyState >= 2)")
            page.keyboard.press("5")
            page.wait_for_function("[...document.querySelectorAll('.pane video')]"
                                   ".every(v => !v.seeking && v.currentTime > 2 && v.readyState >= 3)")
            page.wait_for_timeout(500)  # the players' loading spinners fade out
            page.screenshot(path=str(HERE / "web-compare.png"))
            browser.close()
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(15)
    print(f"wrote {HERE / 'web-gallery.png'} and {HERE / 'web-compare.png'}")


if __name__ == "__main__":
    main()
