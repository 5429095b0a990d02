"""Jobs to rows and back, and what a JobQuery becomes in SQL (WHERE, ORDER BY)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from tui.jobs import ACTIVE_STATES, Job, JobRequest, JobState, VideoFacts
from tui.query import JobQuery
from tui.store.schema import _STATE_RANK

# Job fields stored in a column of the same name; id, request and state are handled apart.
_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(Job) if f.name not in ("id", "request", "state")
)
_COLUMNS: tuple[str, ...] = ("id", "provider", "model", "prompt", "request_json", "state", *_FIELDS)
_BOOL_FIELDS = frozenset({"cost_is_estimate", "remote_deleted", "delete_pending"})
_JSON_FIELDS = frozenset({"video", "rejects"})
# What transition()/update() may set; the timestamps of the row itself are the store's job.
_SETTABLE = frozenset(_FIELDS) - {"created_at", "updated_at"}

_INSERT_JOB = f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_INSERT_EVENT = "INSERT INTO events (job_id, at, state, detail) VALUES (?, ?, ?, ?)"
# ...and one an engine writes, signed with its name (Store.fence_name).
_INSERT_EVENT_BY = ("INSERT INTO events (job_id, at, state, detail, engine)"
                    " VALUES (?, ?, ?, ?, ?)")
_SELECT_JOB = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
# The states of jobs the engine still owns, as an SQL list for `state IN (...)`.
_ACTIVE_SQL = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATES))

# id ends every sort so paging with OFFSET never shows a row twice or skips one; each
# ordering has an index with the same columns (rowid is implicitly last), so a page of
# 50 out of 100 000 is read in index order instead of sorting the whole table.
_ORDER: dict[str, tuple[str, ...]] = {
    "created": ("created_at", "id"),
    "updated": ("updated_at", "id"),
    "state": (_STATE_RANK, "created_at", "id"),
    "model": ("model", "created_at", "id"),
    "provider": ("provider", "model", "created_at", "id"),
    "cost": ("cost_usd", "created_at", "id"),
}

# The same orderings as row values that compare the way ORDER BY sorts them, for counting
# the rows before a job. A row-value comparison with NULL is NULL, so cost_usd (the one
# nullable sort column) splits into "has a cost" and the cost: NULL sorts first.
_ORDER_KEY: dict[str, tuple[str, ...]] = {
    **_ORDER,
    "cost": ("cost_usd IS NOT NULL", "coalesce(cost_usd, 0)", "created_at", "id"),
}

# ------------------------------------------------------------------ row <-> Job, queries


# Where things are in a row read with _SELECT_JOB (by position: a lookup by name costs
# more than the rest of making the Job). The job's own fields run in order to the end.
_ID, _REQUEST, _STATE = (_COLUMNS.index(name) for name in ("id", "request_json", "state"))
_FIRST_FIELD = _COLUMNS.index(_FIELDS[0])


@lru_cache(maxsize=8192)
def _stored_request(text: str) -> JobRequest:
    """The request a row holds. A request never changes once recorded, and a window read
    makes Jobs again for the same rows at every jump: one parse per request text (the
    dashboard's filter ⏎ spent a third of its 200-row read here). JobRequest is frozen and
    nothing changes its options in place, so sharing one is safe."""
    return JobRequest.from_stored(text)


def _job_from_row(row: Sequence[Any]) -> Job:
    values = dict(zip(_FIELDS, row[_FIRST_FIELD:], strict=True))
    for name in _BOOL_FIELDS:
        values[name] = bool(values[name])
    video = values["video"]
    values["video"] = VideoFacts.from_dict(json.loads(video)) if video else None
    rejects = values["rejects"]
    values["rejects"] = json.loads(rejects) if rejects and rejects != "{}" else {}
    return Job(
        id=row[_ID],
        request=_stored_request(row[_REQUEST]),
        state=JobState(row[_STATE]),
        **values,
    )


def _column_value(name: str, value: Any) -> Any:
    if name in _BOOL_FIELDS:
        return int(bool(value))
    if name in _JSON_FIELDS:
        if isinstance(value, VideoFacts):
            value = value.to_dict()
        return None if value is None else json.dumps(value, sort_keys=True)
    if value is None or type(value) in (str, float, int):  # the common case, without an ABC check
        return value
    if isinstance(value, os.PathLike):  # `file` may arrive as a Path
        return os.fspath(value)
    return value


def _row_for(job: Job) -> tuple[Any, ...]:
    req = job.request
    head = (job.id, req.provider, req.model, req.prompt, req.to_json(), job.state.value)
    return head + tuple(_column_value(name, getattr(job, name)) for name in _FIELDS)


def _settable(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - _SETTABLE
    if unknown:
        raise TypeError(f"not a settable job field: {', '.join(sorted(unknown))}")
    return {name: _column_value(name, value) for name, value in values.items()}


def fts_query(text: str) -> str | None:
    """Turn what a user typed into an FTS5 query that cannot be a syntax error.

    Each word becomes a quoted prefix term (`"word"*`), so `"`, `-`, `:`, `AND`, `NEAR`
    and friends are plain text; the terms are ANDed. Words without a letter or digit
    would be empty phrases that match nothing, so they are dropped; None means no word
    was left to search for. NUL would end the query string early inside SQLite: it is a
    separator here.
    """
    terms = [
        '"' + word.replace('"', '""') + '"*'
        for word in text.replace("\x00", " ").split()
        if any(ch.isalnum() for ch in word)
    ]
    return " AND ".join(terms) or None


def _states(states: Iterable[JobState] | JobState) -> set[JobState]:
    # JobState is a str: iterating a lone state would yield its letters.
    if isinstance(states, str):
        return {JobState(states)}
    return {JobState(s) for s in states}


def _glob_prefix(value: str) -> str:
    # GLOB's own wildcards are escaped.
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in value) + "*"


def search_words(text: str) -> str | None:
    """The words of a search that can match anything (with a letter or digit), space
    separated, or None: what PostgreSQL's wan_tui_query() turns into prefix terms. NUL
    cannot be stored in PostgreSQL text: it is a separator here too."""
    words = [word for word in text.replace("\x00", " ").split()
             if any(ch.isalnum() for ch in word)]
    return " ".join(words) or None


@dataclass(frozen=True)
class Dialect:
    """What the SQL of one backend spells its own way (the rest is written once)."""

    name: str
    model_prefix: str  # "model starts with ?": the parameter is model_pattern(value)
    model_pattern: Callable[[str], str]
    search: str  # "the prompt matches ?": the parameter is search_text(typed)
    search_text: Callable[[str], str | None]
    no_limit: int | None  # LIMIT's value for "every row"
    for_update: str  # appended to a SELECT whose rows the transaction will change
    # ...and to one whose rows another transaction may hold: those are passed over, not
    # waited for (engines claiming jobs at once each take different ones).
    skip_locked: str = ""
    # SQLite sorts NULL first; PostgreSQL last unless told. Said for the nullable sort
    # column (cost_usd) only: its index is built the same way, the others keep theirs.
    nulls_first: bool = False

    def sort_key(self, key: str, descending: bool) -> str:
        if self.nulls_first and key == "cost_usd":
            return key + (" DESC NULLS LAST" if descending else " NULLS FIRST")
        return key + (" DESC" if descending else "")


SQLITE = Dialect(
    name="sqlite",
    # GLOB is case-sensitive, so it can use the model index.
    model_prefix="model GLOB ?",
    model_pattern=_glob_prefix,
    search="id IN (SELECT rowid FROM jobs_fts WHERE jobs_fts MATCH ?)",
    search_text=fts_query,
    no_limit=-1,
    for_update="",  # BEGIN IMMEDIATE holds the whole file
)

POSTGRES = Dialect(
    name="postgresql",
    model_prefix="starts_with(model, ?)",
    model_pattern=lambda value: value,
    # wan_tui_words / wan_tui_query: tui/store/schema.py (a GIN index on the first).
    search="wan_tui_words(prompt) @@ wan_tui_query(?)",
    search_text=search_words,
    no_limit=None,
    for_update=" FOR UPDATE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    nulls_first=True,
)


def _where(q: JobQuery | None, dialect: Dialect = SQLITE) -> tuple[str, list[Any]]:
    q = q or JobQuery()
    clauses: list[str] = []
    params: list[Any] = []
    if q.states is not None:
        wanted = sorted(s.value for s in _states(q.states))
        clauses.append(f"state IN ({', '.join('?' * len(wanted))})" if wanted else "FALSE")
        params += wanted
    if q.provider is not None:
        clauses.append("provider = ?")
        params.append(q.provider)
    if q.model is not None:  # `model:wan` finds every wan model: the id's start is enough
        clauses.append(dialect.model_prefix)
        params.append(dialect.model_pattern(q.model))
    if q.batch is not None:
        clauses.append("batch_id = ?")
        params.append(q.batch)
    if q.source is not None:
        clauses.append("source_id = ?")
        params.append(q.source)
    if q.pick is not None:  # "none": not picked yet
        clauses.append("pick IS NULL" if q.pick == "none" else "pick = ?")
        params += [] if q.pick == "none" else [q.pick]
    query = dialect.search_text(q.text) if q.text is not None else None
    if query is not None:
        clauses.append(dialect.search)
        params.append(query)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
