"""A team's queries: leases (which engine follows a job), the team's engines, and the rate
budget its engines share per provider key. Written once for both backends, like history.py,
whose Store inherits them; kept apart so each module stays one subject.

Size: the lease and rate-budget queries belong together (a team's engines coordinating
through the database) and each is a single transaction whose SQL reads best in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from tui.jobs import JobState
from tui.store.records import Claim, RateSlot, StoreError, TeamEngine
from tui.store.rows import _ACTIVE_SQL, _INSERT_EVENT_BY, Dialect
from tui.store.tx import Row, T, Tx

# The engines table with each engine's active jobs counted; no parameters, so the doctor's
# own read-only connection runs it as it is (TeamEngine takes the row in this order).
TEAM_ENGINES_SQL = (
    "SELECT name, host, pid, home, output_dir, started_at, heartbeat_at, stopped_at,"
    f" (SELECT count(*) FROM jobs WHERE owner = engines.name AND state IN ({_ACTIVE_SQL}))"
    " FROM engines ORDER BY name")


class TeamQueries:
    """Mixed into Store: the primitives below are the backend's (sqlite.py, postgres.py)."""

    dialect: Dialect
    fence_name: str | None
    _clock: Callable[[], float]

    async def _transact(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError

    async def set_meta(self, key: str, value: str) -> None:  # Store's
        raise NotImplementedError

    # ------------------------------------------------------------ leases: who follows a job

    async def register_engine(self, name: str, host: str, pid: int, home: str,
                              output_dir: str, lease_s: float) -> None:
        """Say that engine `name` runs here (pid, home), refusing a name another live engine
        holds: two engines of one name would each think the other's jobs their own. A row
        with this home and host is this machine's previous engine, which is dead (the
        caller holds the home's flock), so it is taken over at once."""
        now = self._clock()

        async def body(tx: Tx) -> None:
            rows = await tx.fetch("SELECT host, pid, home, heartbeat_at, stopped_at FROM engines"
                                  f" WHERE name = ?{self.dialect.for_update}", (name,))
            if rows:
                other_host, other_pid, other_home, beat, stopped = rows[0]
                if (stopped is None and beat >= now - lease_s
                        and (other_host, other_home) != (host, home)):
                    raise StoreError(
                        f"engine name {name!r} is in use by pid {other_pid} on {other_host} "
                        f"(home {other_home}, heard from {now - beat:.0f} s ago): give each "
                        "machine its own name with WAN_TUI_ENGINE_NAME")
            await tx.run(
                "INSERT INTO engines (name, host, pid, home, output_dir, started_at,"
                " heartbeat_at, stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"
                " ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
                " home = excluded.home, output_dir = excluded.output_dir,"
                " started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,"
                " stopped_at = NULL", (name, host, pid, home, output_dir, now, now))

        await self._transact(body)

    async def engine_stopped(self, name: str, pid: int) -> None:
        """A clean stop: others need not wait a lease to know it is gone (its jobs' leases
        still run out by themselves, leaving a restart time to take them back)."""
        await self._transact(lambda tx: tx.run(
            "UPDATE engines SET stopped_at = ? WHERE name = ? AND pid = ?",
            (self._clock(), name, pid)))

    async def claim_jobs(self, name: str, lease_s: float, *, own: bool = False,
                         ids: Sequence[int] | None = None) -> list[Claim]:
        """Take the lease of the active jobs engine `name` should follow, in one commit:
        with `own`, every job leased to this name (its previous process died: called once
        at start); otherwise jobs recorded on this machine that nobody follows yet, and
        adoptions: a job whose lease ran out, or that nobody claimed within a lease (its
        machine's engine is not running). Each claim raises the job's epoch, which fences
        the writes of whoever held it before. Rows another engine is claiming right now
        are skipped, not waited for."""
        now = self._clock()
        params: tuple[Any, ...]
        if own:
            who, params = "owner = ?", (name,)
        else:
            who = ("owner IS NULL AND (origin = ? OR origin IS NULL OR created_at < ?)"
                   " OR owner != ? AND (lease_until IS NULL OR lease_until < ?)")
            params = (name, now - lease_s, name, now)
        if ids is not None:  # only these (a batch this engine just recorded itself)
            if not ids:
                return []
            who = f"({who}) AND id IN ({', '.join('?' * len(ids))})"
            params = (*params, *ids)

        candidates = (f"SELECT id, state, owner, lease_epoch FROM jobs WHERE state IN"
                      f" ({_ACTIVE_SQL}) AND ({who}) ORDER BY created_at, id")
        # An engine looks at every other machine's commit and almost always finds nothing
        # to claim: one plain read then, and a transaction only when there is something.
        if not await self._read(candidates, params):
            return []

        async def body(tx: Tx) -> list[Claim]:
            rows = await tx.fetch(candidates + self.dialect.skip_locked, params)
            if not rows:
                return []
            claims = [Claim(int(r[0]), int(r[3]) + 1, JobState(r[1]),
                            r[2] if r[2] != name else None) for r in rows]
            await tx.run_many(
                "UPDATE jobs SET owner = ?, lease_epoch = ?, lease_until = ? WHERE id = ?",
                [(name, c.epoch, now + lease_s, c.job_id) for c in claims])
            adopted = [c for c in claims if c.previous is not None]
            if adopted:  # shown in the timeline and to every window (updated_at)
                await tx.run_many("UPDATE jobs SET updated_at = ? WHERE id = ?",
                                  [(now, c.job_id) for c in adopted])
                await tx.run_many(_INSERT_EVENT_BY, [
                    (c.job_id, now, c.state.value,
                     f"adopted by engine {name}: engine {c.previous}'s lease ran out", name)
                    for c in adopted])
            return claims

        return await self._transact(body)

    async def renew_leases(self, name: str, lease_s: float) -> dict[int, int]:
        """Extend every lease engine `name` holds on an active job, and beat its heart; the
        jobs it still holds, with their epochs (a job missing, or with another epoch, was
        adopted by another engine meanwhile)."""
        now = self._clock()

        async def body(tx: Tx) -> list[Row]:
            await tx.run("UPDATE engines SET heartbeat_at = ? WHERE name = ?", (now, name))
            return await tx.fetch(
                f"UPDATE jobs SET lease_until = ? WHERE owner = ? AND state IN ({_ACTIVE_SQL})"
                " RETURNING id, lease_epoch", (now + lease_s, name))

        return {int(r[0]): int(r[1]) for r in await self._transact(body)}

    async def leases_of(self, job_ids: Iterable[int]
                        ) -> dict[int, tuple[str | None, int, JobState]]:
        """(owner, epoch, state) of each job: what became of leases an engine thought held."""
        ids = list(job_ids)
        if not ids:
            return {}
        rows = await self._read(
            "SELECT id, owner, lease_epoch, state FROM jobs"
            f" WHERE id IN ({', '.join('?' * len(ids))})", ids)
        return {int(r[0]): (r[1], int(r[2]), JobState(r[3])) for r in rows}

    async def work_for(self, name: str, lease_s: float) -> list[int]:
        """The active jobs engine `name` follows or would claim: whether a machine's windows
        need to start its engine (another machine's running jobs are not its work)."""
        now = self._clock()
        rows = await self._read(
            f"SELECT id FROM jobs WHERE state IN ({_ACTIVE_SQL}) AND (owner = ?"
            " OR owner IS NULL AND (origin = ? OR origin IS NULL OR created_at < ?)"
            " OR owner != ? AND (lease_until IS NULL OR lease_until < ?)) ORDER BY id",
            (name, name, now - lease_s, name, now))
        return [int(row[0]) for row in rows]

    async def note(self, job_id: int, detail: str) -> None:
        """Append a line to a job's timeline without touching the job (not fenced: an
        engine that lost a job's lease still says what it learned, such as the remote id
        of a submit that answered late)."""
        async def body(tx: Tx) -> None:
            rows = await tx.fetch("SELECT state FROM jobs WHERE id = ?", (job_id,))
            if rows:
                await tx.run(_INSERT_EVENT_BY, (job_id, self._clock(), rows[0][0], detail,
                                                self.fence_name))

        await self._transact(body)

    # ------------------------------------------------------------ a team's engines

    async def team_engines(self) -> list[TeamEngine]:
        """Every engine that ever followed this history's jobs, by name, each with the
        number of active jobs whose lease it holds (`wan-tui doctor` lists them)."""
        return [TeamEngine(*row) for row in await self._read(TEAM_ENGINES_SQL)]

    # ------------------------------------------------------------ the shared rate budget
    # A team's engines (one per machine) share a provider key, and the provider counts its
    # limit per key: each engine's call is a row of rate_spend, and an engine may send only
    # while the key's rows in the last window are under the limit (tui/engine/sharedbudget.py).
    # Times are the engines' clock, passed in (`now`), not the store's. `key_id` names a key
    # without holding it (a provider's name and a short hash of its key).

    _PRUNE_EVERY = 32  # granted slots between two deletes of rows that left the window
    _rate_grants = 0  # slots this store granted (for the pruning's turn)

    async def _serialise_rate_key(self, tx: Tx, key_id: str, rate_class: str) -> None:
        """Hold the key's budget until commit, so two engines never both take its last slot.
        SQLite: BEGIN IMMEDIATE already holds the whole file (a backend with finer locks
        overrides this)."""

    @staticmethod
    def _rate_limit_key(key_id: str, rate_class: str) -> str:
        return f"rate limit {key_id} {rate_class}"

    async def take_rate_slot(self, key_id: str, rate_class: str, limit: int, now: float,
                             engine: str | None, *, window_s: float = 60.0) -> RateSlot:
        """One request of the key's budget: granted and recorded in this one transaction
        (wait_s 0.0), or refused with the seconds until one may fit (a block on the key, or
        the window full until its oldest row leaves). The limit is the provider's own, as
        the last engine to hear it wrote it (set_rate_limit), else `limit`: an engine that
        has not yet had an answer must not count against its default."""
        since = now - window_s

        async def body(tx: Tx) -> RateSlot:
            await self._serialise_rate_key(tx, key_id, rate_class)
            rows = await tx.fetch(
                "SELECT (SELECT blocked_until FROM rate_blocks WHERE key_id = ? AND"
                " rate_class = ?), (SELECT count(*) FROM rate_spend WHERE key_id = ? AND"
                " rate_class = ? AND at > ?), (SELECT value FROM meta WHERE key = ?)",
                (key_id, rate_class, key_id, rate_class, since,
                 self._rate_limit_key(key_id, rate_class)))
            blocked, used = float(rows[0][0] or 0.0), int(rows[0][1])
            known = max(1, int(rows[0][2]) if rows[0][2] else limit)
            if blocked > now:
                return RateSlot(blocked - now, used, blocked, known)
            if used >= known:
                # The row whose leaving makes room for one more (the limit may have shrunk).
                rows = await tx.fetch(
                    "SELECT at FROM rate_spend WHERE key_id = ? AND rate_class = ? AND at > ?"
                    " ORDER BY at LIMIT 1 OFFSET ?", (key_id, rate_class, since, used - known))
                return RateSlot(max(0.001, float(rows[0][0]) + window_s - now), used,
                                blocked, known)
            await tx.run("INSERT INTO rate_spend (key_id, rate_class, at, engine)"
                         " VALUES (?, ?, ?, ?)", (key_id, rate_class, now, engine))
            self._rate_grants += 1
            if self._rate_grants % self._PRUNE_EVERY == 0:
                await tx.run("DELETE FROM rate_spend WHERE key_id = ? AND rate_class = ?"
                             " AND at <= ?", (key_id, rate_class, since))
            return RateSlot(0.0, used + 1, blocked, known)

        return await self._transact(body)

    async def set_rate_limit(self, key_id: str, rate_class: str, limit: int) -> None:
        """The provider's limit for the key, as an answer's headers said: what every engine
        counts against from now on (take_rate_slot)."""
        await self.set_meta(self._rate_limit_key(key_id, rate_class), str(int(limit)))

    async def block_rate(self, key_id: str, rate_class: str, until: float) -> None:
        """Close the key's budget until `until` for every engine (a 429's Retry-After, or
        the server's remaining 0 until its reset); an earlier block never shortens it."""
        await self._transact(lambda tx: tx.run(
            "INSERT INTO rate_blocks (key_id, rate_class, blocked_until) VALUES (?, ?, ?)"
            " ON CONFLICT (key_id, rate_class) DO UPDATE SET blocked_until = CASE"
            " WHEN excluded.blocked_until > rate_blocks.blocked_until"
            " THEN excluded.blocked_until ELSE rate_blocks.blocked_until END",
            (key_id, rate_class, until)))

    async def rate_state(self, key_id: str, rate_class: str, now: float, *,
                         window_s: float = 60.0) -> RateSlot:
        """The key's use in the window, its block and limit, taking nothing (wait_s: until
        the block ends, 0 if none): what the status shows as `used`."""
        rows = await self._read(
            "SELECT (SELECT blocked_until FROM rate_blocks WHERE key_id = ? AND rate_class = ?),"
            " (SELECT count(*) FROM rate_spend WHERE key_id = ? AND rate_class = ? AND at > ?),"
            " (SELECT value FROM meta WHERE key = ?)",
            (key_id, rate_class, key_id, rate_class, now - window_s,
             self._rate_limit_key(key_id, rate_class)))
        blocked = float(rows[0][0] or 0.0)
        return RateSlot(max(0.0, blocked - now), int(rows[0][1]), blocked,
                        int(rows[0][2]) if rows[0][2] else 0)
