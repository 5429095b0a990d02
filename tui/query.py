"""Which jobs to show: one query object that the UI builds and the store reads whole.

Pure (no IO): `parse` reads what `/` typed in the dashboard (`state:failed model:wan
batch:31 pick:star some words`), `admits` judges a job without SQL, and `Store.list_jobs`,
`count_jobs` and `position_of` turn the same object into one WHERE clause.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui.jobs import PICKS, Job, JobState, ValidationError


@dataclass(frozen=True)
class JobQuery:
    states: tuple[JobState, ...] | None = None  # None: any state; (): none at all
    provider: str | None = None
    model: str | None = None  # a prefix of the model id: `model:wan` finds every wan model
    text: str | None = None  # prompt words, each a prefix (full-text search)
    batch: int | None = None
    source: int | None = None  # `from:12`: the variations (and "like this" jobs) of #12
    pick: str | None = None  # one of PICKS, or "none": not picked yet

    def __post_init__(self) -> None:
        # Any collection of states (or one state) is kept as a tuple; a JobState is a
        # str, so a lone one would otherwise iterate as its letters.
        states = self.states
        if states is not None and not isinstance(states, tuple):
            states = (states,) if isinstance(states, JobState) else tuple(states)
            object.__setattr__(self, "states", states)

    @classmethod
    def parse(cls, query: str) -> JobQuery:
        """Read the dashboard's filter syntax; ValidationError (one line) for a typo."""
        states: list[JobState] = []
        model = provider = None
        batch: int | None = None
        source: int | None = None
        pick: str | None = None
        words: list[str] = []
        for token in query.split():
            key, sep, value = token.partition(":")
            if sep and key in ("state", "s") and value:
                for part in value.split(","):
                    try:
                        states.append(JobState(part))
                    except ValueError:
                        raise ValidationError(
                            f"unknown state {part!r}; use one of "
                            + ", ".join(s.value for s in JobState)) from None
            elif sep and key in ("model", "m") and value:
                model = value
            elif sep and key in ("provider", "p") and value:
                provider = value
            elif sep and key in ("batch", "b") and value:
                if not value.lstrip("#").isdigit():
                    raise ValidationError(f"batch:{value}: a batch is named by a number, "
                                          "e.g. batch:31 (its first job's #)")
                batch = int(value.lstrip("#"))
            elif sep and key == "from" and value:
                if not value.lstrip("#").isdigit():
                    raise ValidationError(f"from:{value}: name a job by its number, e.g. "
                                          "from:12 (the jobs made from #12)")
                source = int(value.lstrip("#"))
            elif sep and key == "pick" and value:
                if value not in (*PICKS, "none"):
                    raise ValidationError(f"pick:{value}: use pick:star, pick:reject or "
                                          "pick:none")
                pick = value
            elif token in {s.value for s in JobState}:
                states.append(JobState(token))  # a bare state name filters by state
            else:
                words.append(token)
        return cls(tuple(states) or None, provider, model, " ".join(words) or None, batch,
                   source, pick)

    @property
    def empty(self) -> bool:
        return (self.states is None and not (self.model or self.provider or self.text)
                and self.batch is None and self.source is None and self.pick is None)

    def admits(self, job: Job) -> bool:
        """Whether the job passes the parts of the query that can be judged without SQL
        (prompt words are a full-text match: only the store can say)."""
        return ((self.states is None or job.state in self.states)
                and (self.model is None or job.model.startswith(self.model))
                and (self.provider is None or job.provider == self.provider)
                and (self.batch is None or job.batch_id == self.batch)
                and (self.source is None or job.source_id == self.source)
                and (self.pick is None or (job.pick or "none") == self.pick))
