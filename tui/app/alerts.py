"""Calm notifications: what finished is counted, what went wrong stays until looked at.

A batch of sixty finishing together used to raise sixty toasts over the table. Now jobs
done are announced together ("+12 done") at most every few seconds, and jobs that did not
finish well are kept on one line, grouped by reason ("✘ content policy ×2 · expired ×1"),
until the user looks at them: the cursor resting on one, or `!` showing them all.
No Textual here: the app shows what this holds.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from tui import format as fmt
from tui.jobs import Job, JobState


def reason_of(job: Job) -> str:
    """The short reason a job did not finish: its error's first clause, or its state."""
    if job.state in (JobState.EXPIRED, JobState.UNKNOWN) or not job.error:
        return str(job.state)
    head = job.error.split(":", 1)[0].strip()
    return fmt.excerpt(head.replace("_", " "), 40)


def done_words(jobs: list[Job]) -> str:
    """One line for jobs done since the last: `+12 done (#31 #32 … #42)`, or one job's."""
    if len(jobs) == 1:
        job = jobs[0]
        return f"#{job.id} done · {fmt.size(job.bytes)} · {fmt.excerpt(job.prompt, 40)}"
    jobs = sorted(jobs, key=lambda j: j.id)
    ids = " ".join(f"#{j.id}" for j in jobs[:3])
    more = f" … #{jobs[-1].id}" if len(jobs) > 3 else ""
    return f"+{len(jobs)} done ({ids}{more})"


class Alerts:
    """Jobs that did not finish well and that the user has not looked at yet."""

    def __init__(self) -> None:
        self.unseen: dict[int, str] = {}  # job id -> reason, in the order they ended

    def add(self, job: Job) -> None:
        self.unseen[job.id] = reason_of(job)

    def seen(self, job_ids: Iterable[int]) -> bool:
        """Forget these (looked at); True when that changed anything."""
        gone = [job_id for job_id in job_ids if job_id in self.unseen]
        for job_id in gone:
            del self.unseen[job_id]
        return bool(gone)

    def groups(self) -> list[tuple[str, list[int]]]:
        by_reason: dict[str, list[int]] = {}
        for job_id, reason in self.unseen.items():
            by_reason.setdefault(reason, []).append(job_id)
        return sorted(by_reason.items(), key=lambda item: -len(item[1]))

    def text(self) -> Text:
        if not self.unseen:
            return Text()
        text = Text(f" {fmt.GLYPHS[JobState.FAILED]} {len(self.unseen)} not done: ",
                    style="bold red")
        for n, (reason, ids) in enumerate(self.groups()):
            if n:
                text.append(" · ", style="grey62")
            text.append(reason)
            text.append(f" ×{len(ids)}" if len(ids) > 1 else f" #{ids[0]}", style="bold")
        text.append("   ! shows them", style="grey62")
        return text


DONE_EVERY_S = 5.0  # jobs done are announced together, at most this often


class Settled:
    """Jobs that settled since the timer last looked: the done ones wait to be announced
    together; the others go to the alert line at once."""

    def __init__(self) -> None:
        self.fresh: list[Job] = []
        self._done: list[Job] = []  # done since the last "+N done"
        self._done_at = 0.0

    @property
    def waiting(self) -> bool:
        return bool(self.fresh or self._done)

    def sort(self, alerts: Alerts, now: float) -> tuple[bool, str | None]:
        """(whether the alert line gained jobs, the words announcing jobs done or None)."""
        fresh, self.fresh = self.fresh, []
        failed = False
        for job in fresh:
            if job.state == JobState.DONE:
                self._done.append(job)
            else:
                alerts.add(job)
                failed = True
        if self._done and now - self._done_at >= DONE_EVERY_S:
            self._done_at = now
            done, self._done = self._done, []
            return failed, done_words(done)
        return failed, None


class Repeats:
    """Words said in the last `window_s` seconds: an outage must not repeat one toast per
    poll. Kept small: old words are forgotten once it holds a few hundred."""

    def __init__(self, window_s: float = 20.0) -> None:
        self.window_s = window_s
        self._said: dict[str, float] = {}

    def first(self, words: str, now: float) -> bool:
        """True when these words were not said within the window (and notes them now)."""
        if now - self._said.get(words, -1e9) < self.window_s:
            return False
        self._said[words] = now
        if len(self._said) > 500:
            self._said = {w: t for w, t in self._said.items() if now - t < self.window_s}
        return True
