"""Settling `unknown` jobs from the provider's own ledger, where the ledger proves the answer.

An `unknown` job is a paid submit whose answer never came (a crash, a timeout, a reset): it
may or may not have been charged, and wan-tui never resends it. Venice's usage history lists
every charge with its time, SKU, amount and, for a video, the queue id as its request id.
Each pass reads the ledger around the unknown jobs' submit windows and applies these rules:

- a charge whose request id is a queue id some job of ours holds is that job's (explained);
- a charge for the job's model (its SKU starts with the model id) inside the job's window
  that no job explains, when it is the only such charge in that window and no other unknown
  job's window holds it, settles the job as charged; when its request id can be retrieved
  as a queue id, the job takes that id and is followed and downloaded after all;
- a window whose charges (any SKU) are all explained, once the ledger has recorded something
  past the window's end, settles the job as not charged;
- anything less certain leaves the job `unknown`, with what the ledger showed in its
  timeline (written once per distinct finding), and `wan-tui resolve` stays for it.

A job's window runs from when its paid request was claimed, less `ledger_skew_s` (our clock
against the provider's), to whichever came first of that moment plus the request deadline
and the moment it was found `unknown`, plus the same skew. Every settlement is written in the
job's timeline with its evidence.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tui.jobs import Job, JobState, ValidationError, settle_unknown
from tui.providers.base import Gone, Provider, ProviderError, Ready
from tui.providers.billing import Charge, Ledger
from tui.query import JobQuery

if TYPE_CHECKING:
    from tui.engine.parts import EngineParts

log = logging.getLogger("wan_tui.engine")

DEFAULT_DEADLINE_S = 120.0  # a provider without a request deadline of its own
MAX_AGE_S = 7 * 86400  # older unknown jobs are left to `wan-tui resolve`
# An engine with nothing else to do stays this many settle passes after a job became
# `unknown` on a provider with a ledger: the charge, or the ledger moving past the job's
# window, usually shows within minutes, and an engine that left settles nothing.
WAIT_PASSES = 3


@dataclass(frozen=True)
class Window:
    job: Job
    start: float
    end: float

    def holds(self, charge: Charge) -> bool:
        return self.start <= charge.at < self.end


def clusters(windows: list[Window]) -> list[list[Window]]:
    """Windows grouped where they overlap: one ledger walk per group, never a walk over the
    days between two unknown jobs."""
    groups: list[list[Window]] = []
    for window in sorted(windows, key=lambda w: w.start):
        if groups and window.start <= max(w.end for w in groups[-1]):
            groups[-1].append(window)
        else:
            groups.append([window])
    return groups


def for_model(charge: Charge, model: str) -> bool:
    """Venice's SKUs for videos are not documented; its other SKUs start with the model id
    (`zai-org-glm-5-1-llm-output-mtoken`), so a video's is taken to as well."""
    return charge.amount < 0 and charge.sku.startswith(model)


def clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


class Settler:
    def __init__(self, engine: EngineParts) -> None:
        self.engine = engine
        self._said: dict[int, str] = {}  # job id → the last finding written to its timeline

    async def run(self) -> None:
        """Passes while the engine runs: at start, then every `settle_every_s`."""
        every = self.engine.policy.settle_every_s
        while self.engine.running:
            await self.settle_all()
            if every <= 0:
                return
            await self.engine.clock.sleep(every)

    async def waiting(self) -> bool:
        """Whether a job became `unknown` on a provider with a ledger within the last
        WAIT_PASSES passes and is not settled yet (the engine stays up for it)."""
        every = self.engine.policy.settle_every_s
        if every <= 0:
            return False
        since = self.engine.store.now() - WAIT_PASSES * every
        for name in self._ledgers():
            newest = await self.engine.store.list_jobs(  # one row, however many
                JobQuery(states=(JobState.UNKNOWN,), provider=name), order="updated",
                limit=1)
            if newest and newest[0].updated_at >= since:
                return True
        return False

    def _ledgers(self) -> dict[str, Provider]:
        """The providers whose ledger can be read: a key, and a ledger to read."""
        return {name: provider for name, provider in self.engine.providers.items()
                if provider.has_ledger and provider.configured}

    async def settle_all(self) -> None:
        for name, provider in self._ledgers().items():
            try:
                await self.settle(name, provider)
            except ProviderError as err:  # no ledger now: the jobs wait for the next pass
                log.info("%s ledger not read: %s", name, err)
            except Exception:
                log.exception("settling unknown %s jobs failed", name)

    async def settle(self, name: str, provider: Provider) -> None:
        store = self.engine.store
        jobs = await store.list_jobs(JobQuery(states=(JobState.UNKNOWN,), provider=name),
                                     descending=False)
        oldest = store.now() - MAX_AGE_S
        windows = [w for w in [await self._window(job, provider) for job in jobs]
                   if w is not None and w.start >= oldest]
        for group in clusters(windows):
            await self.engine.spend(name, "retrieve", 5.0)
            ledger = await provider.ledger(min(w.start for w in group),
                                           max(w.end for w in group))
            unexplained = [c for c in ledger.charges if not (
                c.request_id and await store.find_by_remote_id(name, c.request_id))]
            for window in group:
                taken = await self._settle_one(window, group, unexplained, ledger, provider)
                if taken is not None:
                    unexplained.remove(taken)

    async def _window(self, job: Job, provider: Provider) -> Window | None:
        sent = found = None
        for event in await self.engine.store.events(job.id):
            if event.state == JobState.SUBMITTING:
                sent, found = event.at, None
            elif event.state == JobState.UNKNOWN and found is None:
                found = event.at  # when it became unknown (later notes keep that state)
        if sent is None:
            return None  # no record of when it went out: nothing to look for
        skew = self.engine.policy.ledger_skew_s
        policy = getattr(provider, "policy", None)
        deadline = getattr(policy, "deadline_s", DEFAULT_DEADLINE_S)
        end = min(sent + deadline, found if found is not None else sent + deadline)
        return Window(job, sent - skew, end + skew)

    async def _settle_one(self, window: Window, windows: list[Window],
                          unexplained: list[Charge], ledger: Ledger,
                          provider: Provider) -> Charge | None:
        job = window.job
        inside = [c for c in unexplained if window.holds(c)]
        mine = [c for c in inside if for_model(c, job.model)]
        where = f"{clock(window.start)}-{clock(window.end)}"
        if len(mine) == 1:
            charge = mine[0]
            rivals = [w.job.id for w in windows
                      if w is not window and w.holds(charge) and for_model(charge, w.job.model)]
            if not rivals:
                return charge if await self._charged(job, charge, provider, where) else None
            await self._leave(job, f"the ledger shows one charge for {job.model} in "
                                   f"{where} ({charge.describe()}), but unknown job(s) "
                                   f"{', '.join(map(str, rivals))} could own it too")
            return None
        if len(mine) > 1:
            await self._leave(job, f"the ledger shows {len(mine)} charges for {job.model} in "
                                   f"{where} that no job explains: cannot tell which is this "
                                   "job's")
            return None
        caught_up = ledger.recorded_until is not None and ledger.recorded_until >= window.end
        if not inside and caught_up:
            await self._settle(job, charged=False, evidence=(
                f"every charge in {where} belongs to another job and the ledger has "
                f"recorded past it (to {clock(ledger.recorded_until or 0)})"))
            return None
        if inside:
            await self._leave(job, f"the ledger shows {len(inside)} charge(s) in {where} no "
                                   f"job explains, none for {job.model}: "
                                   f"{'; '.join(c.describe() for c in inside[:3])}")
        else:
            await self._leave(job, f"no charge for it in {where} so far; the ledger has not "
                                   "recorded past that window yet")
        return None

    async def _charged(self, job: Job, charge: Charge, provider: Provider, where: str
                       ) -> bool:
        """Settle as charged; False when that has to wait (its request id could not be
        asked about now)."""
        evidence = f"{charge.describe()} at {clock(charge.at)}, in {where}"
        rid = charge.request_id
        answers = await self._retrievable(job, rid, provider) if rid else False
        if answers is None:
            await self._leave(job, f"the ledger shows its charge ({charge.describe()}); its "
                                   "request id could not be asked about now: next time")
            return False
        if answers:
            await self._settle(job, charged=True, remote_id=rid,
                               evidence=f"{evidence}; it answers as a queue id")
            await self.engine.rescan()  # starts following it
            return True
        if rid:
            evidence += "; its request id does not answer as a queue id (404)"
        await self._settle(job, charged=True, evidence=evidence)
        return True

    async def _retrievable(self, job: Job, rid: str, provider: Provider) -> bool | None:
        """Whether `rid` answers as a queue id of the job's model: only a 404 says no; any
        other failure (a 5xx, a rate limit, the network) says nothing (None)."""
        probe = replace(job, remote_id=rid)
        try:
            await self.engine.spend(job.provider, "retrieve", 5.0)
            outcome = await provider.poll(probe)
        except ProviderError as err:
            log.info("job %s: ledger request id %s not retrieved now: %s", job.id, rid, err)
            return None
        if isinstance(outcome, Ready) and outcome.stream is not None:
            await outcome.stream.aclose()  # the follower fetches it again as the job's own
        return not isinstance(outcome, Gone)

    async def _settle(self, job: Job, *, charged: bool, evidence: str,
                      remote_id: str | None = None) -> None:
        label = self.engine.providers[job.provider].label or job.provider
        try:  # the same settlement as `wan-tui resolve` writes, with the ledger's evidence
            plan = settle_unknown(job, charged=charged, now=self.engine.store.now(),
                                  remote_id=remote_id)
        except ValidationError as err:
            log.info("job %s not settled: %s", job.id, err)
            return
        if not charged:
            what = "not charged"
        elif remote_id:
            what = f"charged, provider id {remote_id}; following it"
        else:
            what = "charged; no provider id, so the video cannot be fetched here"
        detail = f"settled from the {label} ledger: {what} -- {evidence}"
        await self.engine.transition(job, plan.state, detail, **plan.fields)
        self._said.pop(job.id, None)

    async def _leave(self, job: Job, finding: str) -> None:
        """Still unknown: say what the ledger showed, once per distinct finding."""
        if self._said.get(job.id) == finding:
            return
        self._said[job.id] = finding
        await self.engine.store.update(job.id, event=f"ledger checked, still unknown: {finding}")
