"""The status line gives way by priority at every width: what matters most stays, the rest
leaves whole (never cut mid-word), with all three providers' figures competing for room."""

from __future__ import annotations

import pytest
from conftest import T2V

from tests.test_app import dashboard, until
from tui.app.batch_status import BatchSummary
from tui.app.facade import BatchStats, BudgetStatus, Follower
from tui.app.widgets.status import (
    BATCH,
    MUST,
    Segment,
    StatusData,
    StatusLine,
    compose,
    fit,
    status_segments,
)
from tui.jobs import JobRequest, JobState
from tui.providers.base import Quote

NOW = 1_750_000_000.0
WIDTHS = (80, 120, 160)


def full_data(**changes) -> StatusData:
    """A busy afternoon: a batch running, every kind of count, three providers' budgets."""
    counts = dict.fromkeys(JobState, 0)
    counts.update({JobState.PROCESSING: 26, JobState.QUEUED: 4, JobState.DONE: 1_204,
                   JobState.FAILED: 17, JobState.UNKNOWN: 1, JobState.EXPIRED: 3,
                   JobState.CANCELLED: 9})
    batch_counts = dict.fromkeys(JobState, 0)
    batch_counts.update({JobState.DONE: 12, JobState.FAILED: 2, JobState.PROCESSING: 26})
    batch = BatchSummary(BatchStats(31, batch_counts, 10.0, 3.2, NOW - 3600, NOW - 3600,
                                    NOW - 60, "a fox"), eta_s=840, per_hour=30)
    budgets = [BudgetStatus("venice", "queue", 31, 40, 0, 997.59),
               BudgetStatus("venice", "retrieve", 32, 120, 0, 997.59),
               BudgetStatus("apixo", "queue", 20, 20, 3, None),  # at its limit, jobs waiting
               BudgetStatus("apixo", "retrieve", 4, 60, 0, None),
               BudgetStatus("acedata", "queue", 2, 30, 0, 41.5),
               BudgetStatus("acedata", "retrieve", 9, 60, 0, 41.5)]
    data = StatusData(counts=counts, spend_today=21.36, budgets=budgets, unconfigured=[],
                      halted={}, follower=Follower(4242, NOW - 7200, here=True), batch=batch)
    for key, value in changes.items():
        setattr(data, key, value)
    return data


def kept_and_left(segments: list[Segment], line: str) -> tuple[list[int], list[int]]:
    """Which segments the fitted line shows, read back from its text: the subsequence of
    whole segments whose composition is exactly the line (searched, pruned by prefix)."""
    def search(i: int, chosen: list[int]) -> list[int] | None:
        built = compose([segments[j] for j in chosen]).plain
        if not line.startswith(built):
            return None
        if i == len(segments):
            return chosen if built == line else None
        return search(i + 1, [*chosen, i]) or search(i + 1, chosen)

    kept = search(0, [])
    assert kept is not None, f"the line is no sequence of whole segments: {line!r}"
    return kept, [i for i in range(len(segments)) if i not in kept]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_line_fits_and_every_segment_is_whole_or_gone(width):
    segments = status_segments(full_data())
    whole = compose(segments)
    assert whole.cell_len > 160  # everything at once does not fit even the widest here
    line = fit(segments, width)
    assert line.cell_len <= width
    kept, left = kept_and_left(segments, line.plain)
    assert kept and left
    # Most important first: a segment left out did not fit beside the ones before it in
    # importance, and nothing less important was kept at its expense unless it was smaller.
    rank = {i: (segments[i].priority, i) for i in range(len(segments))}
    for gone in left:
        before = [k for k in kept if rank[k] < rank[gone]]
        assert compose([segments[i] for i in sorted([*before, gone])]).cell_len > width
    # The batch's progress and today's spend stay at every width.
    assert line.plain.startswith("batch #31 12/40 ✘2 ◐26 ETA 14m")
    assert "today $21.36" in line.plain
    # Never a word cut: every word shown is a word of the whole line.
    assert set(line.plain.split()) <= set(whole.plain.split())


def test_what_each_width_keeps():
    segments = status_segments(full_data())
    at = {width: fit(segments, width).plain for width in WIDTHS}
    # 80: the batch, its ETA, the history's trouble, today's spend.
    assert "ETA 14m" in at[80] and "✘ 18 failed" in at[80] and "today $21.36" in at[80]
    # A budget at its limit (apixo's queue) is trouble: it stays before the calm ones.
    assert "apixo q20/20 r4/60" in at[120]
    # 160: all three providers' budgets, whole; who follows the jobs gives way before them.
    for provider in ("venice $997.59 q31/40 r32/120", "apixo q20/20 r4/60",
                     "acedata $41.50 q2/30 r9/60"):
        assert provider in at[160]
    assert "here since" not in at[160]
    # Beside a batch, the history's running and done counts give way before the providers.
    assert "active" not in at[160] and "done" not in at[160]
    # Without a batch they are the first thing on the line.
    alone = fit(status_segments(full_data(batch=None)), 80).plain
    assert alone.startswith("◐ 30 active  ✔ 1,204 done  ✘ 18 failed  │ today $21.36")
    # With room for everything, everything is there, in its order.
    assert fit(segments, 1000).plain == compose(segments).plain


def test_a_halted_provider_and_nobody_following_stay_at_80():
    data = full_data(halted={"venice": "402 insufficient balance"},
                     follower=Follower(None, None, here=False))
    line = fit(status_segments(data), 80).plain
    assert "venice halted: 402 insufficient balance" in line
    assert "⚑ nobody follows the jobs" in line
    assert [s.priority for s in status_segments(data) if "halted" in s.text.plain] == [MUST]


def test_the_history_counts_keep_their_label_only_with_a_batch_beside_them():
    with_batch = fit(status_segments(full_data()), 200).plain
    assert "│ all ◐ 30 active" in with_batch
    alone = fit(status_segments(full_data(batch=None)), 200).plain
    assert "all" not in alone.split() and alone.startswith("⚑ here since 1")
    # The label goes with its group: when the first count leaves, the next one carries it.
    segments = [Segment(status_segments(full_data())[0].text, BATCH, "who"),
                *[s for s in status_segments(full_data()) if s.group == "all"]]
    segments[1] = Segment(segments[1].text, 9, "all", segments[1].lead)  # active: last to stay
    line = fit(segments, compose(segments).cell_len - 1).plain
    assert "│ all ✔ 1,204 done" in line and "active" not in line


def test_a_segment_too_wide_for_any_line_leaves_and_smaller_ones_stay():
    huge = Segment(compose(status_segments(full_data())), BATCH, "x")
    small = Segment(status_segments(full_data())[1].text, 5, "y")
    assert fit([huge, small], 80).plain == small.text.plain
    assert fit([], 80).plain == ""


# ---------------------------------------------------------------- in the dashboard


def three_providers() -> list[JobRequest]:
    return [JobRequest(model=T2V, prompt="a fox", provider="venice", duration="5s"),
            JobRequest(model="wan-2-5-t2v", prompt="a boat", provider="apixo", duration="5s",
                       resolution="720p"),
            JobRequest(model="wan2.6-t2v", prompt="a lighthouse", provider="acedata",
                       duration="5s")]


async def test_the_dashboards_status_line_gives_way_at_80_120_and_160(sim):
    async with dashboard(sim, size=(160, 30)) as (app, pilot, facade):
        await facade.submit(three_providers(), [Quote(0.25)] * 3)
        status = app.query_one(StatusLine)

        def providers_shown() -> bool:
            names = {s.text.plain.split()[0] for s in status._segments if s.group == "money"}
            return {"venice", "apixo", "acedata"} <= names

        await until(pilot, providers_shown, 40, "all three providers' budgets")
        for width in (160, 120, 80, 160):
            await pilot.resize_terminal(width, 30)
            await until(pilot, lambda w=width: status.content_size.width == w - 2, 5, "resized")

            def drawn_and_fitted(w: int = width) -> bool:
                # Read in one go (no await between): the figures move while jobs run, and
                # each show() refits, so the line is checked against its own segments.
                segments, shown = status._segments, status._shown
                if shown is None or shown.plain != fit(segments, w - 2).plain:
                    return False
                assert 0 < shown.cell_len <= w - 2
                assert kept_and_left(segments, shown.plain)[0]
                # What the widget draws is that line, inside its padding.
                return "".join(s.text for s in status.render_line(0)).strip() == shown.plain

            await until(pilot, drawn_and_fitted, 10, f"refitted to {width} and drawn")
