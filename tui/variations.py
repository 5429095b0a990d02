"""Variations of a job: the same request again, with a new seed where the model takes one.

Pure (no IO): the app's `V`, the `vary` command and their tests share it. Which providers
take a seed is each adapter's `takes_seed` (APIXO's and AceData's wan models do; Venice's
queue body has no seed field, so a Venice variation is the same request sent again, which
the provider renders afresh each time).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from tui.jobs import Job, JobRequest, ValidationError

# Seeds drawn for variations: non-negative and within 32 bits, which every provider that
# takes a seed accepts (their documents give an int, none a wider range).
SEED_RANGE = (0, 2**31 - 1)
MAX_COUNT = 100  # variations of one job at once: a slip of the finger should not cost $500
MAX_TOTAL = 1000  # variations in one go, over every source job


@dataclass(frozen=True)
class Variation:
    source: Job
    request: JobRequest

    @property
    def seed_changed(self) -> bool:
        return self.request.seed != self.source.request.seed


def check_count(count: int, sources: int) -> None:
    if not 1 <= count <= MAX_COUNT:
        raise ValidationError(f"count: {count} variations; give 1 to {MAX_COUNT} per job")
    if count * sources > MAX_TOTAL:
        raise ValidationError(f"count: {count} x {sources} jobs is {count * sources} "
                              f"variations; at most {MAX_TOTAL} at once")


def variations(jobs: Sequence[Job], count: int, takes_seed: Callable[[str], bool],
               rng: random.Random | None = None) -> list[Variation]:
    """`count` variations of each job, in order: job 1's, then job 2's. Where its provider
    takes a seed, each gets a new one (never the source's, never one drawn twice)."""
    check_count(count, len(jobs))
    rng = rng or random.Random()
    out: list[Variation] = []
    for job in jobs:
        seeded = takes_seed(job.provider)
        used: set[int | None] = {job.request.seed}
        for _ in range(count):
            request = job.request
            if seeded:
                seed = _fresh_seed(rng, used)
                used.add(seed)
                request = replace(request, seed=seed)
            out.append(Variation(job, request))
    return out


def _fresh_seed(rng: random.Random, used: Iterable[int | None]) -> int:
    taken = set(used)
    while True:
        seed = rng.randint(*SEED_RANGE)
        if seed not in taken:
            return seed


def describe(variations_: Sequence[Variation]) -> str:
    """`3 variations of #12 (new seeds) and 3 of #14 (same request again)`."""
    parts: list[str] = []
    by_source: dict[int, list[Variation]] = {}
    for v in variations_:
        by_source.setdefault(v.source.id, []).append(v)
    for source_id, group in by_source.items():
        how = "new seeds" if group[0].seed_changed else "same request again"
        noun = "variation" if len(group) == 1 else "variations"
        parts.append(f"{len(group)} {noun} of #{source_id} ({how})" if not parts
                     else f"{len(group)} of #{source_id} ({how})")
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] \
        if parts else "no variations"
