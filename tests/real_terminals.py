"""Real terminal emulators on a virtual X display, for the picture tests.

Each `Display` is its own Xvfb (a display number it picks itself with -displayfd, so
tests under pytest-xdist never share one). A `Terminal` runs `wan-tui demo` in xterm,
mlterm or kitty on it, with WAN_TUI_SCREEN_FILE set so the app keeps the text of the
screen it believes it drew; `dump()` asks the terminal itself for the text it shows:

- xterm: the print-immediate action (bound to a key here, pressed with xdotool: XTEST,
  as a user's keyboard) writes the screen to a file;
- kitty: `kitty @ get-text` over its remote-control socket;
- mlterm: its snapshot command, bound to a key in $HOME/.mlterm/key ("proto:snapshot dump")
  and pressed with xdotool, saves the screen's text under $HOME/.mlterm. (Not the OSC
  5379 that `mlcc exec snapshot` writes to the tty: the app's frame reaches the tty in
  more than one write, and a sequence landing between two of them, say between an ESC
  and its `[34;117H`, leaves that text on the screen.)

Keys go in through xdotool (XTEST) to the window under the pointer; resizing is
xdotool windowsize. Everything started is ended by its pid, and the temp dirs go with
pytest's tmp_path.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

MARKS = re.compile("[\U000f0000-\U000ffffd\U0010eeee]")  # ours, and kitty's placeholder


class Display:
    def __init__(self, tmp: Path) -> None:
        read, write = os.pipe()
        self.proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1920x1200x24",
             "-nolisten", "tcp"],
            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        number = b""
        deadline = time.monotonic() + 20
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            chunk = os.read(read, 16)
            if not chunk:
                break
            number += chunk
        os.close(read)
        if not number.strip():
            self.close()
            raise RuntimeError("Xvfb did not start")
        self.name = f":{number.decode().strip()}"
        self.tmp = tmp

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("TMUX", "STY", "WAN_TUI_IMAGES", "COLUMNS", "LINES")}
        env["DISPLAY"] = self.name
        return env

    def screenshot(self, path: Path) -> Image.Image:
        subprocess.run(["import", "-display", self.name, "-window", "root", str(path)],
                       check=True, timeout=30, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        with Image.open(path) as image:
            return image.convert("RGB")

    def xdotool(self, *args: str) -> None:
        subprocess.run(["xdotool", *args], env=self.env(), check=True, timeout=15,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wan_tui() -> str:
    """The wan-tui of this interpreter's environment (the editable install under test)."""
    return str(Path(sys.executable).with_name("wan-tui"))


class Terminal:
    """`wan-tui demo` in a real terminal emulator on `display`."""

    def __init__(self, kind: str, display: Display, tmp: Path, *, cols: int = 160,
                 rows: int = 45, images: str | None = None, vt340: bool = True,
                 demo_args: tuple[str, ...] = ("--mean", "6"), preamble: str = "",
                 tmux: bool = False) -> None:
        self.kind, self.display, self.tmp = kind, display, tmp
        self.screen_file = tmp / "screen.txt"
        home = tmp / "home"
        home.mkdir(exist_ok=True)
        wrapper = tmp / "run.sh"
        demo = f"{wan_tui()} demo {' '.join(demo_args)}"
        app = tmp / "app.sh"  # the app itself, run by the terminal (or by tmux in it)
        app.write_text(
            "#!/bin/sh\n"
            f"echo $$ > {tmp}/app.pid\n"
            f"exec {demo}\n")
        app.chmod(0o755)
        if tmux:  # its own server and config: no status bar, so the screen is the app's
            (tmp / "tmux.conf").write_text("set -g status off\n")
            wrapper.write_text("#!/bin/sh\n"
                               f"exec tmux -S {tmp}/tmux.sock -f {tmp}/tmux.conf "
                               f"new-session {app}\n")
        else:
            # preamble: what another program may have left the terminal in before us
            wrapper.write_text(f"#!/bin/sh\nprintf '{preamble}'\nexec {app}\n")
        wrapper.chmod(0o755)
        env = display.env()
        env["HOME"] = str(home)  # mlterm keeps its snapshots (and kitty its cache) there
        env["WAN_TUI_SCREEN_FILE"] = str(self.screen_file)
        env["XDG_CONFIG_HOME"] = str(home / ".config")
        env["XDG_CACHE_HOME"] = str(home / ".cache")
        if images:
            env["WAN_TUI_IMAGES"] = images
        self.env = env
        self.sock = tmp / "kitty.sock"
        if kind == "xterm":
            self.print_prefix = tmp / "xterm-print"
            args = ["xterm", *(["-ti", "vt340"] if vt340 else []),
                    "-geometry", f"{cols}x{rows}+0+0",
                    "-xrm", f"XTerm*printFileImmediate: {self.print_prefix}",
                    "-xrm", "XTerm*printOptsImmediate: 1",
                    "-xrm", "XTerm*VT100.translations: #override "
                            "Ctrl Shift <Key>F12: print-immediate()",
                    "-e", str(wrapper)]
        elif kind == "mlterm":
            (home / ".mlterm").mkdir(exist_ok=True)
            (home / ".mlterm" / "key").write_text(
                'Control+Shift+F12="proto:snapshot dump"\n')
            args = ["mlterm", "-geometry", f"{cols}x{rows}+0+0", "-e", str(wrapper)]
        elif kind == "kitty":
            args = ["kitty", "--config", "NONE", "-o", "allow_remote_control=yes",
                    "--listen-on", f"unix:{self.sock}",
                    "-o", "remember_window_size=no",
                    "-o", f"initial_window_width={cols}c",
                    "-o", f"initial_window_height={rows}c",
                    "-o", "placement_strategy=top-left", "-o", "window_padding_width=0",
                    str(wrapper)]
        else:
            raise ValueError(kind)
        self.log = open(tmp / f"{kind}.log", "wb")  # noqa: SIM115  (closed in close())
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=self.log,
                                     start_new_session=True)

    # ------------------------------------------------------------ what the app believes

    def belief(self) -> tuple[tuple[int, int], int, list[str]] | None:
        """(size, pictures drawn, rows) of the screen the app last sent, marks and all."""
        try:
            text = self.screen_file.read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        head, _, body = text.partition("\n")
        size, draws = head.split(" ")
        w, h = size.split("x")
        return (int(w), int(h)), int(draws.split("=")[1]), body.split("\n")

    def wait_belief(self, ok, timeout: float = 90.0, what: str = "") -> list[str]:
        deadline = time.monotonic() + timeout
        rows: list[str] = []
        while time.monotonic() < deadline:
            self.check_alive()
            got = self.belief()
            if got is not None:
                rows = got[2]
                if ok(got):
                    return rows
            time.sleep(0.2)
        raise AssertionError(f"{self.kind}: not seen in {timeout:.0f} s: {what}\n"
                             + "\n".join(rows))

    def dump_with_beliefs(self) -> tuple[list[str], list[tuple]]:
        """The terminal's dump, and every screen the app believed it showed while the
        dump was being taken (`kitty @ get-text` takes seconds: the clocks tick meanwhile)."""
        import threading

        seen: list[tuple] = []
        done = threading.Event()

        def watch() -> None:
            while True:
                got = self.belief()
                if got is not None and (not seen or seen[-1] != got):
                    seen.append(got)
                if done.wait(0.03):
                    return

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            dump = self.dump()
        finally:
            time.sleep(0.1)
            done.set()
            watcher.join()
        return dump, seen

    def wait_quiet(self, quiet_s: float = 0.3, timeout: float = 5.0) -> None:
        """Until the app has sent no frame for `quiet_s` (its clocks tick once a second,
        so there is such a moment between ticks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                age = time.time() - self.screen_file.stat().st_mtime
            except FileNotFoundError:
                age = 0.0
            if age >= quiet_s:
                return
            time.sleep(0.05)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.kind} ended: " + (self.tmp / f"{self.kind}.log")
                                 .read_text(errors="replace")[-2000:])

    # ------------------------------------------------------------ what the terminal shows

    def dump(self) -> list[str]:
        """The terminal's own text of its screen, a string per row."""
        if self.kind == "xterm":
            for old in self.tmp.glob("xterm-print*"):
                old.unlink()
            return self._dump_by_key(lambda: list(self.tmp.glob("xterm-print*")),
                                     "xterm's print-immediate wrote nothing")
        if self.kind == "kitty":
            # After a resize kitty's reflow leaves rows marked as wrapped into the next, and
            # get-text joins those: the markers split them again.
            out = subprocess.run(["kitty", "@", "--to", f"unix:{self.sock}", "get-text",
                                  "--add-wrap-markers"],
                                 env=self.env, capture_output=True, timeout=15, check=True)
            text = out.stdout.decode("utf-8", "replace").rstrip("\r\n")
            return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        # mlterm: its snapshot, bound to a key (see the module's docstring for why not
        # the OSC sequence)
        snapdir = Path(self.env["HOME"]) / ".mlterm"
        if snapdir.exists():
            shutil.rmtree(snapdir / "snaps", ignore_errors=True)
            for old in snapdir.glob("*.snp"):
                old.unlink()
        return self._dump_by_key(
            lambda: list(snapdir.glob("*.snp")) if snapdir.exists() else [],
            "mlterm wrote no snapshot")

    def _dump_by_key(self, written, failure: str) -> list[str]:
        """Press the key bound to the terminal's dump and read the file it writes. On a
        loaded box a press just after a resize has gone unanswered (xterm under tmux, once
        in a run with two CPU burners): pressed again after 10 s, three times at most."""
        for _ in range(3):
            self.key("ctrl+shift+F12")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                files = written()
                if files:
                    time.sleep(0.2)  # written in one go, but let it finish
                    return files[0].read_text(encoding="utf-8", errors="replace") \
                        .rstrip("\n").split("\n")
                time.sleep(0.1)
        raise AssertionError(failure)

    # ------------------------------------------------------------ a user's hands

    def key(self, *keys: str) -> None:
        self.display.xdotool("mousemove", "200", "200")
        for key in keys:
            self.display.xdotool("key", "--clearmodifiers", key)
            time.sleep(0.15)

    def window(self) -> str:
        out = subprocess.run(["xdotool", "search", "--pid", str(self.proc.pid)],
                             env=self.display.env(), capture_output=True, timeout=15)
        ids = out.stdout.split()
        if not ids:  # kitty's window belongs to its own process
            out = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "."],
                                 env=self.display.env(), capture_output=True, timeout=15)
            ids = out.stdout.split()
        return ids[-1].decode()

    def resize(self, width_px: int, height_px: int) -> None:
        self.display.xdotool("windowsize", self.window(), str(width_px), str(height_px))

    def close(self) -> None:
        # The app first (it would go on following its jobs headless after the terminal's
        # hangup), then the terminal.
        try:
            pid = int((self.tmp / "app.pid").read_text())
        except (FileNotFoundError, ValueError):
            pid = 0
        if pid:
            # SIGTERM ends the app, a second stops its engine; each is given time to end
            # cleanly (the demo deletes its folder on the way out), SIGKILL only after.
            for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGTERM, 5.0),
                               (signal.SIGKILL, 2.0)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and _alive(pid):
                    time.sleep(0.1)
                if not _alive(pid):
                    break
        if (self.tmp / "tmux.sock").exists():
            subprocess.run(["tmux", "-S", str(self.tmp / "tmux.sock"), "kill-server"],
                           capture_output=True, timeout=15)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (the terminal, its parent, has not reaped it yet) has ended
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def text_of(row: str) -> str:
    """A row as a terminal shows it: marks (cells a picture covers) are blanks there."""
    return MARKS.sub(" ", row).rstrip()


def picture_columns(row: str) -> tuple[int, int] | None:
    """The columns from a row's first mark to past its last (a picture's cells), if any."""
    marks = [m.start() for m in MARKS.finditer(row)]
    return (marks[0], marks[-1] + 1) if marks else None


def same_row(kind: str, belief: str, shown: str) -> bool:
    """Whether a row of the terminal's dump is the app's row. mlterm turns the cells a
    sixel covers into cells of the picture, which its snapshot writes as blanks but not
    always one a cell: there, the text before and after the picture must match."""
    want = text_of(belief)
    if want == shown.rstrip():
        return True
    span = picture_columns(belief)
    if kind != "mlterm" or span is None:
        return False
    first, last = span
    tail = belief[last:].rstrip()
    return shown[:first] == belief[:first] and shown.rstrip().endswith(tail) and \
        len(shown.rstrip()) >= first + len(tail)


def yellow_rows(image: Image.Image, run: int = 12) -> int:
    """Rows of pixels with a run of `run` or more yellow pixels: the simulator's frames
    are colour bars, and nothing else on the dashboard is a wide block of yellow."""
    import numpy as np

    a = np.asarray(image)
    yellow = (a[..., 0] > 170) & (a[..., 1] > 170) & (a[..., 2] < 100)
    # a run of `run` yellow pixels: the sum over a sliding window reaches `run`
    sums = np.cumsum(np.pad(yellow, ((0, 0), (1, 0))).astype(np.int32), axis=1)
    windows = sums[:, run:] - sums[:, :-run]
    return int((windows >= run).any(axis=1).sum())
