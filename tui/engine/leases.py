"""Which jobs this engine follows: leases, renewed by a heartbeat and fenced by epochs.

Every engine has a name: its machine's (`tui.config.machine_name`: WAN_TUI_ENGINE_NAME,
else the host name). A job recorded on a machine carries that name as its `origin`, and
the machine's engine claims it: the claim writes `owner`, raises the job's `lease_epoch`
and sets `lease_until` a lease (30 s) ahead, so the video lands on the machine that asked
for it. While the engine lives it renews its leases every third of a lease; when it dies,
is cut off from the database or stalls (SIGSTOP, a laptop lid), they run out and any other
engine adopts the jobs on its next look (Store.claim_jobs), downloading to its own folder.

The epoch is a fencing token (Kleppmann, "How to do distributed locking"): the engine's
store refuses any job write whose row no longer carries this engine's name and the epoch
it claimed (Store._check_fence, in the write's own transaction). An engine that comes back
after its lease went to another can therefore never submit, finish, download over or delete
that job; it only notes in the job's timeline what it learned late (a remote id).

On one person's SQLite file the same claims and fences run (one code path), but nothing
else can adopt: the home's flock already makes this the only engine, and a new process
takes back its predecessor's jobs at once (`own`). Heartbeats run only where engines
share a database.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from tui.store import Claim, Store

log = logging.getLogger("wan_tui.engine")

LEASE_S = 30.0
RENEW_EVERY = 1 / 3  # of a lease: two renewals may fail before another engine adopts
# How often the heartbeat measures the database server's clock again (leases are read on
# it: a machine's clock stepped by NTP, or drifting, must not move this engine's leases).
CLOCK_SYNC_S = 60.0


class Leases:
    def __init__(self, store: Store, name: str, *, lease_s: float = LEASE_S) -> None:
        self.store = store
        self.name = name
        self.lease_s = lease_s
        # Only where several engines share the history do leases run out and get adopted.
        self.shared = store.machine is not None
        self.held = store.fenced  # job id -> epoch; the store fences writes by it
        self.until: dict[int, float] = {}  # job id -> when its lease runs out (store clock)
        self.adopted = 0  # jobs this engine took over from another (doctor, tests)
        self.lost = 0  # leases this engine found another engine holding
        self._synced_at = time.monotonic()  # the store measured the clock when it connected

    async def open(self, output_dir: str, *, resume: bool = True) -> list[Claim]:
        """Register this engine and fence its store; with `resume`, take back the jobs
        leased to this name (a previous process's: the flock says it is dead) and claim
        what waits. The claims, for the engine to start."""
        self.store.fence_name = self.name
        await self.store.register_engine(self.name, socket.gethostname(), os.getpid(),
                                         os.environ.get("WAN_TUI_HOME", ""), output_dir,
                                         self.lease_s)
        if not resume:
            return []
        return self._took(await self.store.claim_jobs(self.name, self.lease_s, own=True)
                          + await self.store.claim_jobs(self.name, self.lease_s))

    async def claim(self, job_ids: list[int] | None = None) -> list[Claim]:
        """Claim what this engine should follow now (only `job_ids`, when given)."""
        return self._took(await self.store.claim_jobs(self.name, self.lease_s, ids=job_ids))

    def _took(self, claims: list[Claim]) -> list[Claim]:
        until = self.store.now() + self.lease_s
        for claim in claims:
            self.held[claim.job_id] = claim.epoch
            self.until[claim.job_id] = until
            if claim.previous is not None:
                self.adopted += 1
                log.info("job %s: adopted from engine %s (epoch %s)", claim.job_id,
                         claim.previous, claim.epoch)
        return claims

    def holds(self, job_id: int) -> bool:
        return job_id in self.held

    def drop(self, job_id: int) -> None:
        """The job settled (or was lost): its lease is no longer this engine's concern."""
        self.held.pop(job_id, None)
        self.until.pop(job_id, None)

    def safe_to_send(self, job_id: int) -> bool:
        """Whether this engine surely still holds the job's lease for the next few seconds:
        asked right before a paid call, so an engine that stalled past its lease does not
        send one for a job another engine may already have adopted."""
        if not self.shared:
            return job_id in self.held
        return self.store.now() < self.until.get(job_id, 0.0) - self.lease_s * RENEW_EVERY

    async def renew(self) -> set[int]:
        """Renew every lease and beat the heart; the jobs found adopted by another engine
        (dropped here: the caller stops following them)."""
        if time.monotonic() - self._synced_at >= CLOCK_SYNC_S:
            self._synced_at = time.monotonic()
            await self.store.sync_clock()
        renewed_at = self.store.now()
        still = await self.store.renew_leases(self.name, self.lease_s)
        for job_id in still:
            if job_id in self.until:
                self.until[job_id] = renewed_at + self.lease_s
        doubtful = [job_id for job_id, epoch in self.held.items() if still.get(job_id) != epoch]
        if not doubtful:
            return set()
        lost: set[int] = set()
        facts = await self.store.leases_of(doubtful)
        for job_id in doubtful:
            owner, epoch, state = facts.get(job_id, (None, 0, None))
            if owner == self.name and epoch == self.held.get(job_id) and (
                    state is None or not state.active):
                continue  # settled: no longer renewed, still ours until its task ends
            lost.add(job_id)
            self.drop(job_id)
        self.lost += len(lost)
        return lost

    async def close(self) -> None:
        self.store.fence_name = None
        await self.store.engine_stopped(self.name, os.getpid())
