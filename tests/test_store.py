"""The history database, on real SQLite files: schema, money-critical writes, queries."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from tui.jobs import ACTIVE_STATES, Job, JobRequest, JobState, TransitionError
from tui.query import JobQuery as Q  # noqa: N814 (short: it is in every filter line)
from tui.store import Event, Store, StoreError, fts_query, open_store
from tui.store import rows as store_rows
from tui.store import schema as store_schema

S = JobState


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, db_path: Path, clock: FakeClock):
    """The contract: every test that takes `store` runs against both backends, SQLite in a
    file and a real PostgreSQL server (tests/pg.py), and must pass the same on each."""
    target = db_path if request.param == "sqlite" else request.getfixturevalue("pg_dsn")
    s = await open_store(target, clock=clock)
    yield s
    await s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, db_path: Path) -> Path | str:
    """Where a history is, on each backend: for tests that open several stores on it."""
    return db_path if request.param == "sqlite" else request.getfixturevalue("pg_dsn")


@pytest.fixture
async def sqlite_store(db_path: Path, clock: FakeClock):
    """For what only an SQLite file has (the file itself, its trace of statements)."""
    s = await open_store(db_path, clock=clock)
    yield s
    await s.close()


def req(prompt: str = "a cat on a skateboard", **kw) -> JobRequest:
    kw.setdefault("model", "wan-2.5-preview-text-to-video")
    return JobRequest(prompt=prompt, **kw)


def raw(path: Path) -> sqlite3.Connection:
    """A second, independent connection: what another process would see."""
    return sqlite3.connect(path)


async def add_one(store: Store, prompt: str = "a cat", **kw) -> Job:
    return (await store.add_jobs([req(prompt, **kw)]))[0]


# ------------------------------------------------------------------ schema and migrations


async def test_open_creates_parent_dirs_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "history.db"
    s = await open_store(path)
    await s.close()
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(store_schema.MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"jobs", "events", "jobs_fts", "models_cache", "meta"} <= names
    assert path.stat().st_mode & 0o077 == 0  # prompts are private


async def test_reopening_keeps_everything(db_path: Path, clock: FakeClock) -> None:
    s = await open_store(db_path, clock=clock)
    job = await add_one(s, "a red fox", provider="apixo")
    await s.transition(job.id, S.SUBMITTING, "sending", submitted_at=1_000.0, cost_usd=0.5)
    await s.set_meta("last_batch", "b1")
    await s.save_models("apixo", [{"id": "m1"}])
    before = await s.get(job.id)
    await s.close()
    await s.close()  # closing twice is harmless

    s = await open_store(db_path, clock=clock)
    try:
        assert await s.get(job.id) == before
        assert [e.state for e in await s.events(job.id)] == [S.PENDING, S.SUBMITTING]
        assert await s.get_meta("last_batch") == "b1"
        assert await s.cached_models("apixo") == (1_000.0, [{"id": "m1"}])
        assert [j.id for j in await s.list_jobs(Q(text="fox"))] == [job.id]
    finally:
        await s.close()


async def test_a_newer_database_is_refused_in_one_line(db_path: Path) -> None:
    with raw(db_path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError) as info:
        await open_store(db_path)
    message = str(info.value)
    assert "\n" not in message and "99" in message and "upgrade" in message


async def test_a_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    db_path.write_bytes(b"this is not sqlite, it is a shopping list\n" * 100)
    with pytest.raises(StoreError, match="not a usable"):
        await open_store(db_path)


async def test_opening_an_older_database_runs_the_missing_migrations(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = await open_store(db_path)
    job = await add_one(s)
    await s.close()

    current = len(store_schema.MIGRATIONS)
    nxt = ("ALTER TABLE jobs ADD COLUMN note TEXT", "UPDATE jobs SET note = 'migrated'")
    monkeypatch.setattr(store_schema, "MIGRATIONS", [*store_schema.MIGRATIONS, nxt])
    s = await open_store(db_path)
    try:
        assert await s.get(job.id) == job
    finally:
        await s.close()
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == current + 1
        assert conn.execute("SELECT note FROM jobs").fetchall() == [("migrated",)]


async def test_a_failing_migration_changes_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await (await open_store(db_path)).close()
    current = len(store_schema.MIGRATIONS)
    broken = ("CREATE TABLE half_done (x)", "THIS IS NOT SQL")
    monkeypatch.setattr(store_schema, "MIGRATIONS", [*store_schema.MIGRATIONS, broken])
    with pytest.raises(StoreError):
        await open_store(db_path)
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == current
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in tables


def test_state_rank_lists_every_state_in_lifecycle_order() -> None:
    # The rank text is frozen in an index; a new JobState needs a migration (schema.py).
    rank = store_schema._STATE_RANK
    positions = [rank.index(f"'{state.value}'") for state in JobState]
    assert positions == sorted(positions)


async def test_a_closed_store_says_so(db_path: Path) -> None:
    s = await open_store(db_path)
    await s.close()
    with pytest.raises(StoreError, match="closed"):
        await s.get(1)


# ------------------------------------------------------------------ add_jobs


async def test_add_jobs_records_pending_jobs_and_events(store: Store, clock: FakeClock) -> None:
    requests = [req("one", provider="venice"), req("two", provider="acedata", seed=7)]
    jobs = await store.add_jobs(requests, [0.25, None], cost_is_estimate=True)
    assert [j.request for j in jobs] == requests
    assert [j.quote_usd for j in jobs] == [0.25, None]
    assert all(j.state is S.PENDING and j.cost_is_estimate for j in jobs)
    assert all(j.created_at == j.updated_at == clock.now for j in jobs)
    assert jobs[0].id < jobs[1].id
    assert await store.get(jobs[1].id) == jobs[1]
    assert await store.events(jobs[0].id) == [
        Event(jobs[0].id, clock.now, S.PENDING, "recorded, not yet sent")
    ]
    assert await store.add_jobs([]) == []


async def test_reading_a_page_again_parses_no_request_again(store: Store, monkeypatch) -> None:
    """A window read at every jump makes its Jobs again: each row's request, which never
    changes, is parsed once however often it is read (and reads back equal)."""
    requests = [req(f"prompt {n}", seed=n) for n in range(30)]
    await store.add_jobs(requests)
    parsed = []
    original = JobRequest.from_stored.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(JobRequest, "from_stored",
                        classmethod(lambda cls, text: parsed.append(text) or original(cls, text)))
    store_rows._stored_request.cache_clear()
    first = await store.list_jobs(order="created", descending=False)
    again = await store.list_jobs(order="created", descending=False)
    assert [j.request for j in first] == [j.request for j in again] == requests
    assert len(parsed) == 30


async def test_a_batch_of_500_is_one_commit(sqlite_store: Store, db_path: Path) -> None:
    store = sqlite_store
    statements: list[str] = []
    await store._db.set_trace_callback(statements.append)
    jobs = await store.add_jobs([req(f"prompt {i}") for i in range(500)])
    await store._db.set_trace_callback(None)

    assert len(jobs) == 500
    assert sum(s.strip().upper() == "COMMIT" for s in statements) == 1
    with raw(db_path) as conn:  # committed: another process sees all of them
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 500
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 500


async def test_a_batch_that_fails_halfway_leaves_nothing(sqlite_store: Store, db_path: Path
                                                       ) -> None:
    store = sqlite_store
    quotes: list = [0.1] * 500
    quotes[250] = object()  # cannot be stored: the insert fails on row 251
    with pytest.raises(StoreError):
        await store.add_jobs([req(f"p{i}") for i in range(500)], quotes)
    assert await store.count_jobs() == 0
    with raw(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert len(await store.add_jobs([req()])) == 1  # and the store still works


async def test_add_jobs_wants_one_quote_per_request(store: Store) -> None:
    with pytest.raises(ValueError, match="quotes"):
        await store.add_jobs([req(), req()], [0.1])


# ------------------------------------------------------------------ transitions and updates


async def test_transition_sets_state_fields_and_writes_one_event(
    store: Store, clock: FakeClock
) -> None:
    job = await add_one(store)
    clock.now = 1_010.0
    moved = await store.transition(
        job.id, S.SUBMITTING, "submit sent", submitted_at=1_010.0, cost_usd=0.4
    )
    clock.now = 1_020.0
    queued = await store.transition(job.id, S.QUEUED, "remote id saved", remote_id="r-1")

    assert moved is not None and moved.state is S.SUBMITTING and moved.updated_at == 1_010.0
    assert queued == await store.get(job.id)
    assert (queued.remote_id, queued.cost_usd, queued.submitted_at) == ("r-1", 0.4, 1_010.0)
    assert (queued.updated_at, queued.created_at) == (1_020.0, job.created_at)
    assert await store.events(job.id) == [
        Event(job.id, 1_000.0, S.PENDING, "recorded, not yet sent"),
        Event(job.id, 1_010.0, S.SUBMITTING, "submit sent"),
        Event(job.id, 1_020.0, S.QUEUED, "remote id saved"),
    ]


async def test_an_illegal_transition_raises_and_writes_nothing(store: Store) -> None:
    job = await add_one(store)
    with pytest.raises(TransitionError):
        await store.transition(job.id, S.DONE, file="/tmp/x.mp4")
    assert await store.get(job.id) == job
    assert len(await store.events(job.id)) == 1


async def test_transition_refuses_unknown_fields_and_missing_jobs(store: Store) -> None:
    job = await add_one(store)
    with pytest.raises(TypeError, match="api_key"):
        await store.transition(job.id, S.SUBMITTING, api_key="secret")
    with pytest.raises(TypeError, match="created_at"):
        await store.update(job.id, created_at=1.0)
    with pytest.raises(StoreError, match="no job 999"):
        await store.transition(999, S.SUBMITTING)
    assert await store.transition(999, S.SUBMITTING, expect=[S.PENDING]) is None
    with pytest.raises(StoreError, match="no job 999"):
        await store.update(999, progress=0.5)


async def test_a_claim_on_a_job_in_another_state_writes_nothing(store: Store) -> None:
    job = await add_one(store)
    await store.transition(job.id, S.CANCELLED, "user stopped it")
    assert await store.transition(job.id, S.SUBMITTING, expect=[S.PENDING]) is None
    assert (await store.get(job.id)).state is S.CANCELLED
    assert len(await store.events(job.id)) == 2


async def test_two_processes_never_both_claim_a_job(target: Path | str) -> None:
    a = await open_store(target)
    b = await open_store(target)
    try:
        jobs = await a.add_jobs([req(f"p{i}") for i in range(20)])

        async def claim(store: Store, job: Job) -> Job | None:
            return await store.transition(job.id, S.SUBMITTING, "claimed", expect=[S.PENDING])

        for job in jobs:
            results = await asyncio.gather(claim(a, job), claim(b, job))
            assert sum(r is not None for r in results) == 1
            states = [e.state for e in await b.events(job.id)]
            assert states == [S.PENDING, S.SUBMITTING]
    finally:
        await a.close()
        await b.close()


CLAIMER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from tui.jobs import JobState
    from tui.store import open_store

    async def main():
        # From the environment, not argv: a DSN may hold a password.
        store = await open_store(os.environ["TEST_HISTORY"])
        print("ready", flush=True)
        won = []
        for job_id in json.loads(sys.argv[1]):
            if await store.transition(job_id, JobState.SUBMITTING, "child",
                                      expect=[JobState.PENDING]):
                won.append(job_id)
        await store.close()
        print(json.dumps(won), flush=True)

    asyncio.run(main())
    """
)


async def test_a_real_second_process_never_claims_the_same_job(target: Path | str) -> None:
    store = await open_store(target)
    try:
        ids = [j.id for j in await store.add_jobs([req(f"p{i}") for i in range(100)])]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
               "TEST_HISTORY": str(target)}
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLAIMER,
            json.dumps(ids),
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert await child.stdout.readline() == b"ready\n"
        mine = [i for i in ids if await store.transition(i, S.SUBMITTING, expect=[S.PENDING])]
        theirs = json.loads(await child.stdout.readline())
        assert await child.wait() == 0
        assert sorted(mine + theirs) == ids  # every job claimed, none twice
        for job_id in ids:
            assert [e.state for e in await store.events(job_id)] == [S.PENDING, S.SUBMITTING]
    finally:
        await store.close()


async def test_two_processes_opening_a_new_history_at_once(target: Path | str) -> None:
    a, b = await asyncio.gather(open_store(target), open_store(target))
    await a.add_jobs([req()])
    assert await b.count_jobs() == 1
    await a.close()
    await b.close()


async def test_a_lone_state_is_not_read_as_letters(store: Store) -> None:
    job = await add_one(store)
    assert await store.transition(job.id, S.SUBMITTING, expect=S.PENDING) is not None
    assert [j.id for j in await store.list_jobs(Q(states=S.SUBMITTING))] == [job.id]


async def test_update_changes_fields_and_logs_only_when_asked(
    store: Store, clock: FakeClock
) -> None:
    job = await add_one(store)
    clock.now = 1_005.0
    updated = await store.update(job.id, progress=0.3, estimate_s=90.0)
    assert (updated.state, updated.progress, updated.estimate_s) == (S.PENDING, 0.3, 90.0)
    assert updated.updated_at == 1_005.0
    assert len(await store.events(job.id)) == 1

    clock.now = 1_006.0
    flagged = await store.update(
        job.id, event="remote copy deleted", remote_deleted=True, file=Path("/v/1.mp4")
    )
    assert flagged.remote_deleted is True and flagged.file == "/v/1.mp4"
    assert (await store.events(job.id))[-1] == Event(
        job.id, 1_006.0, S.PENDING, "remote copy deleted"
    )
    with pytest.raises(TypeError):
        await store.update(job.id, state=S.DONE)


async def test_the_event_log_is_append_only(sqlite_store: Store, db_path: Path) -> None:
    store = sqlite_store
    job = await add_one(store)
    with raw(db_path) as conn, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE events SET detail = 'rewritten' WHERE job_id = ?", (job.id,))
    with raw(db_path) as conn, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM events")


async def test_concurrent_coroutines_on_one_store_do_not_interleave(store: Store) -> None:
    jobs = await store.add_jobs([req(f"p{i}") for i in range(30)])
    await asyncio.gather(
        *(store.transition(j.id, S.SUBMITTING, expect=[S.PENDING]) for j in jobs),
        *(store.update(j.id, progress=0.1, event="poll") for j in jobs),
    )
    assert (await store.counts_by_state())[S.SUBMITTING] == 30
    assert [len(await store.events(j.id)) for j in jobs] == [3] * 30


# ------------------------------------------------------------------ search


@pytest.mark.parametrize(
    "text, expected",
    [
        ("cat", '"cat"*'),
        ("wan: cat", '"wan:"* AND "cat"*'),
        ('say "hi', '"say"* AND """hi"*'),
        ("- -- * ( ) ^", None),
        ("   ", None),
    ],
)
def test_fts_query_quotes_every_word(text: str, expected: str | None) -> None:
    assert fts_query(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        '"',
        '""',
        "-",
        "-cat",
        "wan:",
        "prompt:cat",
        "AND",
        "cat AND",
        "OR NOT",
        "NEAR(cat",
        "(",
        ")",
        "*",
        "^cat",
        "cat*",
        "'",
        "a\x00b",
        "ünïcödé",
        "2.5-preview",
        "{col}:x",
    ],
)
async def test_awkward_search_text_never_raises(store: Store, text: str) -> None:
    await store.add_jobs([req("wan 2.5-preview: a cat AND a dog")])
    assert isinstance(await store.list_jobs(Q(text=text)), list)
    assert await store.count_jobs(Q(text=text)) in (0, 1)


async def test_search_matches_prefixes_of_every_word(store: Store) -> None:
    cat, dog, both = await store.add_jobs(
        [req("A Cat on a skateboard"), req("a dog in the rain"), req("cat and dog, café")]
    )
    assert {j.id for j in await store.list_jobs(Q(text="ca"))} == {cat.id, both.id}
    assert {j.id for j in await store.list_jobs(Q(text="CAT dog"))} == {both.id}
    assert {j.id for j in await store.list_jobs(Q(text="cafe"))} == {both.id}  # diacritics fold
    assert {j.id for j in await store.list_jobs(Q(text="skate -"))} == {cat.id}
    assert await store.list_jobs(Q(text="AND")) == [both]  # a word, not an operator
    assert await store.count_jobs(Q(text="rain")) == 1
    assert await store.count_jobs(Q(text='"')) == 3  # nothing to search for: no filter


# ------------------------------------------------------------------ listing and counting


async def make_history(store: Store, clock: FakeClock) -> list[Job]:
    """Five jobs with distinct created times, providers, models, costs and states."""
    specs = [
        ("venice", "m-b", 0.30, S.DONE),
        ("apixo", "m-a", 0.10, S.FAILED),
        ("venice", "m-a", None, S.PENDING),
        ("acedata", "m-c", 0.20, S.QUEUED),
        ("venice", "m-b", 0.50, S.SUBMITTING),
    ]
    jobs = []
    path = {
        S.PENDING: [],
        S.SUBMITTING: [S.SUBMITTING],
        S.QUEUED: [S.SUBMITTING, S.QUEUED],
        S.FAILED: [S.FAILED],
        S.DONE: [S.SUBMITTING, S.QUEUED, S.DOWNLOADING, S.DONE],
    }
    for i, (provider, model, cost, state) in enumerate(specs):
        clock.now = 2_000.0 + i
        job = await add_one(store, f"job number {i}", provider=provider, model=model)
        for step in path[state]:
            await store.transition(job.id, step)
        if cost is not None:
            await store.update(job.id, cost_usd=cost)
        jobs.append(await store.get(job.id))
    return jobs


@pytest.mark.parametrize(
    "order, ascending",
    [
        ("created", [0, 1, 2, 3, 4]),
        ("cost", [2, 1, 3, 0, 4]),  # unknown cost (NULL) first
        ("model", [1, 2, 0, 4, 3]),
        ("provider", [3, 1, 2, 0, 4]),
        ("state", [2, 4, 3, 0, 1]),  # lifecycle order, not the alphabet
        ("updated", [0, 1, 2, 3, 4]),
    ],
)
async def test_list_orders(store: Store, clock: FakeClock, order: str, ascending: list) -> None:
    jobs = await make_history(store, clock)
    ids = [jobs[i].id for i in ascending]
    assert [j.id for j in await store.list_jobs(order=order, descending=False)] == ids
    assert [j.id for j in await store.list_jobs(order=order)] == ids[::-1]


@pytest.mark.parametrize("order", ["created", "cost", "model", "provider", "state", "updated"])
async def test_position_of_is_the_offset_in_list_jobs(
    store: Store, clock: FakeClock, order: str
) -> None:
    jobs = await make_history(store, clock)
    clock.now = 2_004.0  # same created time as the last job: id breaks the tie
    jobs.append(await add_one(store, "job number tie", provider="venice", model="m-b"))
    filters = [Q(), Q(provider="venice"), Q(states=(S.DONE, S.PENDING)), Q(text="number"),
               Q(text="tie", model="m-b")]
    for flt in filters:
        for descending in (True, False):
            listed = [j.id for j in await store.list_jobs(
                flt, order=order, descending=descending)]
            for job in jobs:
                wanted = listed.index(job.id) if job.id in listed else None
                found = await store.position_of(
                    job.id, flt, order=order, descending=descending)
                assert found == wanted, (flt, descending, job.id)
    assert await store.position_of(9_999) is None
    with pytest.raises(ValueError, match="price"):
        await store.position_of(jobs[0].id, order="price")


async def test_list_refuses_an_unknown_order(store: Store) -> None:
    with pytest.raises(ValueError, match="price"):
        await store.list_jobs(order="price")


async def test_list_filters_and_pages(store: Store, clock: FakeClock) -> None:
    jobs = await make_history(store, clock)
    ids = lambda found: [j.id for j in found]  # noqa: E731
    assert ids(await store.list_jobs(Q(provider="venice"))) == [jobs[4].id, jobs[2].id, jobs[0].id]
    assert ids(await store.list_jobs(Q(provider="venice", model="m-b"))) == [jobs[4].id, jobs[0].id]
    assert ids(await store.list_jobs(Q(states=[S.DONE, S.FAILED]))) == [jobs[1].id, jobs[0].id]
    assert await store.list_jobs(Q(states=[])) == []
    assert ids(await store.list_jobs(Q(text="number 3"))) == [jobs[3].id]
    assert await store.list_jobs(Q(provider="venice", states=[S.FAILED])) == []

    pages = [await store.list_jobs(limit=2, offset=o) for o in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [j.id for page in pages for j in page] == [j.id for j in reversed(jobs)]


async def test_counts(store: Store, clock: FakeClock) -> None:
    await make_history(store, clock)
    assert await store.count_jobs() == 5
    assert await store.count_jobs(Q(provider="venice", model="m-b")) == 2
    assert await store.count_jobs(Q(states=ACTIVE_STATES)) == 3
    assert await store.count_jobs(Q(text="number", states=[S.DONE])) == 1
    counts = await store.counts_by_state()
    assert set(counts) == set(JobState)  # zeros included
    assert (counts[S.DONE], counts[S.PENDING], counts[S.EXPIRED]) == (1, 1, 0)


async def test_active_jobs_oldest_first(store: Store, clock: FakeClock) -> None:
    jobs = await make_history(store, clock)
    assert [j.id for j in await store.active_jobs()] == [jobs[2].id, jobs[3].id, jobs[4].id]


async def test_find_by_remote_id(store: Store) -> None:
    venice, apixo = await store.add_jobs([req(provider="venice"), req(provider="apixo")])
    for job in (venice, apixo):
        await store.transition(job.id, S.SUBMITTING)
        await store.transition(job.id, S.QUEUED, remote_id="same-id")
    assert (await store.find_by_remote_id("apixo", "same-id")).id == apixo.id
    assert (await store.find_by_remote_id("venice", "same-id")).id == venice.id
    assert await store.find_by_remote_id("venice", "other") is None


# ------------------------------------------------------------------ money and learning


async def test_spend_since_sums_what_was_submitted(store: Store) -> None:
    jobs = await store.add_jobs([req(), req(), req(), req()])
    for job, at, cost in zip(jobs[:3], (100.0, 200.0, 300.0), (0.5, 0.25, 1.0), strict=True):
        await store.transition(job.id, S.SUBMITTING, submitted_at=at, cost_usd=cost)
    await store.update(jobs[3].id, quote_usd=9.0)  # quoted, never sent: no money
    assert await store.spend_since(200.0) == pytest.approx(1.25)
    assert await store.spend_since(0.0) == pytest.approx(1.75)
    assert await store.spend_since(301.0) == 0.0


async def test_learned_durations_newest_first_per_model(store: Store) -> None:
    runs = [("m1", 100.0, 160.0), ("m1", 200.0, 290.0), ("m2", 100.0, 110.0), ("m1", 300.0, None)]
    for model, submitted, ready in runs:
        job = await add_one(store, model=model)
        await store.update(job.id, submitted_at=submitted, ready_at=ready)
    assert await store.learned_durations("venice", "m1") == [90.0, 60.0]
    assert await store.learned_durations("venice", "m1", limit=1) == [90.0]
    assert await store.learned_durations("apixo", "m1") == []


# ------------------------------------------------------------------ models cache and meta


async def test_models_cache_and_meta(store: Store, clock: FakeClock) -> None:
    assert await store.cached_models("venice") is None
    await store.save_models("venice", [{"id": "a"}])
    clock.now = 1_500.0
    await store.save_models("venice", [{"id": "b", "durations": ["5s"]}])
    assert await store.cached_models("venice") == (1_500.0, [{"id": "b", "durations": ["5s"]}])

    assert await store.get_meta("k") is None
    await store.set_meta("k", "1")
    await store.set_meta("k", "2")
    assert await store.get_meta("k") == "2"


# ------------------------------------------------------------------ a big history


async def test_a_100_000_job_history(store: Store) -> None:
    words = ["cat", "dog", "ocean", "city", "forest", "robot", "dragon", "sunset"]
    states = list(JobState)
    jobs = [
        Job(
            id=0,
            request=JobRequest(
                model=f"m{i % 7}",
                provider=("venice", "apixo", "acedata")[i % 3],
                prompt=f"a {words[i % 8]} near a {words[i // 8 % 8]}, shot {i}",
            ),
            state=states[i % len(states)],
            created_at=10_000.0 + i,
            updated_at=10_000.0 + i,
            cost_usd=0.01,
            submitted_at=10_000.0 + i,
        )
        for i in range(100_000)
    ]
    await store.bulk_insert_for_benchmark(jobs)

    page = await store.list_jobs(limit=50)
    assert [j.created_at for j in page] == [10_000.0 + i for i in range(99_999, 99_949, -1)]
    assert page[0].request == jobs[-1].request and page[0].state is jobs[-1].state
    assert await store.count_jobs() == 100_000

    def expected(*words: str, state: JobState | None = None, provider: str | None = None) -> int:
        return sum(
            all(w in j.prompt for w in words)
            and state in (None, j.state)
            and provider in (None, j.provider)
            for j in jobs
        )

    assert await store.count_jobs(Q(text="dragon")) == expected("dragon") > 20_000
    assert await store.count_jobs(Q(text="dragon robot")) == expected("dragon", "robot") > 2_000
    assert await store.count_jobs(Q(text="drag", states=[S.DONE], provider="venice")) == expected(
        "drag", state=S.DONE, provider="venice"
    )
    filtered = await store.list_jobs(Q(text="ocean", states=[S.DONE]), order="cost", limit=50)
    assert len(filtered) == 50 and all(j.state is S.DONE for j in filtered)
    assert (await store.counts_by_state())[S.DONE] == 10_000
    assert len(await store.events(page[0].id)) == 1

    # The FTS trigger the bulk insert set aside is back: new jobs are searchable.
    (new,) = await store.add_jobs([req("an axolotl")])
    assert [j.id for j in await store.list_jobs(Q(text="axolotl"))] == [new.id]


async def test_a_version_one_database_gains_delete_pending(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A history written by the first schema keeps its jobs and gets the new column.
    with raw(db_path) as conn:
        for statement in store_schema.MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO jobs (provider, model, prompt, request_json, state, created_at,"
            " updated_at) VALUES ('venice', 'm', 'old job', ?, 'done', 1, 1)",
            (JobRequest(model="m", prompt="old job").to_json(),))
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    s = await open_store(db_path)
    try:
        (job,) = await s.list_jobs()
        assert job.prompt == "old job" and job.delete_pending is False
        assert await s.pending_remote_deletes() == []
        await s.update(job.id, delete_pending=True)
        assert [j.id for j in await s.pending_remote_deletes()] == [job.id]
    finally:
        await s.close()


# ------------------------------------------------------------------ picks


async def test_picks_are_kept_with_their_time_and_filtered(store: Store, clock: FakeClock) -> None:
    from tui.jobs import ValidationError

    a, b, c = await store.add_jobs([req("a fox"), req("a boat"), req("a kettle")])
    clock.now = 1_500.0
    starred = await store.set_pick(a.id, "star")
    assert (starred.pick, starred.picked_at, starred.updated_at) == ("star", 1_500.0, 1_500.0)
    await store.set_pick(b.id, "reject")
    assert [j.id for j in await store.list_jobs(Q(pick="star"))] == [a.id]
    assert [j.id for j in await store.list_jobs(Q(pick="none"))] == [c.id]
    assert await store.count_jobs(Q.parse("pick:reject boat")) == 1
    assert await store.position_of(b.id, Q.parse("pick:reject")) == 0
    assert await store.position_of(c.id, Q.parse("pick:reject")) is None
    cleared = await store.set_pick(a.id, None)
    assert cleared.pick is None and cleared.picked_at == 1_500.0
    assert [e.detail for e in await store.events(a.id)][-2:] == ["picked: star", "pick cleared"]
    with pytest.raises(ValidationError):
        await store.set_pick(c.id, "love")
    with pytest.raises(StoreError, match="no job 999"):
        await store.set_pick(999, "star")
    assert (await store.get(c.id)).pick is None
