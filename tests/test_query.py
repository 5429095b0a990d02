"""The one query object: what `/` typed, judged without SQL, and read whole by the store."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tui.jobs import Job, JobRequest, JobState, ValidationError
from tui.query import JobQuery
from tui.store import Store

S = JobState


def job(state: JobState = S.DONE, model: str = "wan-2.5-t2v", provider: str = "venice",
        batch: int | None = None) -> Job:
    return Job(1, JobRequest(model=model, prompt="a fox", provider=provider), state, 1.0, 1.0,
               batch_id=batch)


def test_parse_reads_every_key_and_leaves_words_for_the_prompt():
    q = JobQuery.parse("state:failed,expired m:wan provider:apixo batch:#31 red fox done")
    assert q == JobQuery(states=(S.FAILED, S.EXPIRED, S.DONE), provider="apixo", model="wan",
                         text="red fox", batch=31)
    assert JobQuery.parse("  ") == JobQuery() and JobQuery().empty
    assert not JobQuery.parse("fox").empty


@pytest.mark.parametrize(("typed", "says"), [("state:bogus", "unknown state 'bogus'"),
                                             ("batch:x", "a batch is named by a number"),
                                             ("pick:maybe", "use pick:star, pick:reject")])
def test_a_typo_is_one_line(typed, says):
    with pytest.raises(ValidationError, match=says):
        JobQuery.parse(typed)


def test_admits_judges_what_needs_no_sql():
    q = JobQuery(states=(S.DONE,), model="wan", provider="venice", batch=3)
    assert q.admits(job(batch=3))
    assert not q.admits(job(S.FAILED, batch=3))
    assert not q.admits(job(model="kling", batch=3))
    assert not q.admits(job(provider="apixo", batch=3))
    assert not q.admits(job(batch=4))
    assert not JobQuery(states=()).admits(job())  # no state at all admits nothing


def test_picks_in_the_filter():
    assert JobQuery.parse("pick:star fox") == JobQuery(pick="star", text="fox")
    assert not JobQuery.parse("pick:none").empty
    star, rejected = replace(job(), pick="star"), replace(job(), pick="reject")
    assert JobQuery(pick="star").admits(star) and not JobQuery(pick="star").admits(rejected)
    assert JobQuery(pick="none").admits(job()) and not JobQuery(pick="none").admits(star)


def test_states_are_kept_as_a_tuple_whatever_they_came_as():
    assert JobQuery(states=S.DONE).states == (S.DONE,)  # not ('d', 'o', 'n', 'e')
    assert JobQuery(states=[S.DONE, S.FAILED]).states == (S.DONE, S.FAILED)
    assert JobQuery(states=frozenset({S.QUEUED})).states == (S.QUEUED,)


async def test_the_store_reads_the_query_whole(store: Store):
    jobs = await store.add_jobs([JobRequest(model="wan-2.5-t2v", prompt="a red fox"),
                                 JobRequest(model="kling-2", prompt="a red car"),
                                 JobRequest(model="wan-2.6", prompt="blue sky", provider="apixo")])
    q = JobQuery.parse("model:wan red")
    assert [j.id for j in await store.list_jobs(q)] == [jobs[0].id]
    assert await store.count_jobs(q) == 1
    assert await store.position_of(jobs[0].id, q) == 0
    assert await store.position_of(jobs[1].id, q) is None
    assert await store.count_jobs(JobQuery(states=(S.PENDING,), provider="apixo")) == 1
    assert await store.count_jobs() == 3
