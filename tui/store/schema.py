"""The history's schema: every migration since the first, in order."""

from __future__ import annotations

# "state" sorts in lifecycle order, which reads better than the alphabet. Spelled out, not
# generated from JobState: an index is built on this exact text, so changing it (a new
# state) takes a migration that recreates jobs_state_rank. A test checks it is complete.
_STATE_RANK = (
    "CASE state WHEN 'pending' THEN 0 WHEN 'submitting' THEN 1 WHEN 'queued' THEN 2"
    " WHEN 'processing' THEN 3 WHEN 'downloading' THEN 4 WHEN 'done' THEN 5"
    " WHEN 'failed' THEN 6 WHEN 'expired' THEN 7 WHEN 'cancelled' THEN 8"
    " WHEN 'unknown' THEN 9 END"
)

# The active states (tui.jobs.ACTIVE_STATES) as SQL, spelled out for the same reason: a
# trigger's condition keeps this text (PG_MIGRATIONS[10]). A test checks it is complete.
_ACTIVE_STATES = "'pending', 'submitting', 'queued', 'processing', 'downloading'"

# MIGRATIONS[n - 1] brings the schema from version n-1 to n. Only ever append: a released
# migration is never edited, because databases out there already ran it.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        # AUTOINCREMENT: a job id is never reused, even after a purge, so a file or log
        # line naming job 42 can never be confused with a later job.
        # No CHECK on `state`: adding a state would then need a table rebuild;
        # tui.jobs validates every state before it gets here.
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt TEXT NOT NULL,
            request_json TEXT NOT NULL,
            state TEXT NOT NULL,
            remote_id TEXT,
            result_url TEXT,
            quote_usd REAL,
            cost_usd REAL,
            cost_is_estimate INTEGER NOT NULL DEFAULT 0,
            file TEXT,
            bytes INTEGER,
            sha256 TEXT,
            error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            submitted_at REAL,
            started_at REAL,
            ready_at REAL,
            finished_at REAL,
            estimate_s REAL,
            progress REAL,
            remote_deleted INTEGER NOT NULL DEFAULT 0
        )""",
        # created_at rides along so "these states, newest first" reads in index order.
        "CREATE INDEX jobs_state ON jobs(state, created_at)",
        # One index per list_jobs ordering (see _ORDER).
        "CREATE INDEX jobs_created ON jobs(created_at)",
        "CREATE INDEX jobs_updated ON jobs(updated_at)",
        f"CREATE INDEX jobs_state_rank ON jobs({_STATE_RANK}, created_at)",
        "CREATE INDEX jobs_model ON jobs(model, created_at)",
        "CREATE INDEX jobs_provider_model ON jobs(provider, model, created_at)",
        "CREATE INDEX jobs_cost ON jobs(cost_usd, created_at)",
        "CREATE INDEX jobs_submitted ON jobs(submitted_at)",  # spend_since
        "CREATE INDEX jobs_remote_id ON jobs(remote_id)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs(id),
            at REAL NOT NULL,
            state TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX events_job ON events(job_id, id)",
        # The event log is the audit trail of what was spent: refuse to rewrite it.
        """CREATE TRIGGER events_no_update BEFORE UPDATE ON events
           BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
        """CREATE TRIGGER events_no_delete BEFORE DELETE ON events
           BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
        # External content: the prompt text is stored once, in jobs; FTS keeps only the index.
        """CREATE VIRTUAL TABLE jobs_fts USING fts5(
            prompt, content='jobs', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER jobs_fts_insert AFTER INSERT ON jobs BEGIN
            INSERT INTO jobs_fts(rowid, prompt) VALUES (new.id, new.prompt);
        END""",
        """CREATE TRIGGER jobs_fts_delete AFTER DELETE ON jobs BEGIN
            INSERT INTO jobs_fts(jobs_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
        END""",
        # `OF prompt`: the frequent state/progress updates never touch the FTS index.
        """CREATE TRIGGER jobs_fts_update AFTER UPDATE OF prompt ON jobs BEGIN
            INSERT INTO jobs_fts(jobs_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
            INSERT INTO jobs_fts(rowid, prompt) VALUES (new.id, new.prompt);
        END""",
        """CREATE TABLE models_cache (
            provider TEXT PRIMARY KEY,
            fetched_at REAL NOT NULL,
            models_json TEXT NOT NULL
        )""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    (
        # Remote deletes promised by the user's setting survive a crash between "done"
        # and the delete call (the partial index stays tiny: few rows are ever pending).
        "ALTER TABLE jobs ADD COLUMN delete_pending INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX jobs_delete_pending ON jobs(id) WHERE delete_pending = 1",
    ),
    (
        # Jobs recorded in one add_jobs call are a batch, named by its first job's id
        # (NULL for jobs recorded before batches existed).
        "ALTER TABLE jobs ADD COLUMN batch_id INTEGER",
        "CREATE INDEX jobs_batch ON jobs(batch_id, created_at)",
    ),
    (
        # Actions that any wan-tui window asks of the one engine (cancel, delete, stop).
        # Durable, so a request survives the engine changing hands while it waits; claimed
        # with a conditional UPDATE, so it is carried out once (see Store.take_requests).
        """CREATE TABLE requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            job_id INTEGER,
            state TEXT NOT NULL DEFAULT 'new',
            taken_by INTEGER,
            result TEXT,
            created_at REAL NOT NULL,
            finished_at REAL
        )""",
        "CREATE INDEX requests_open ON requests(state) WHERE state IN ('new', 'taken')",
    ),
    (
        # What a downloaded video holds (tui.media.probe), as JSON: read with the row, never
        # searched, and its keys may grow without another migration.
        "ALTER TABLE jobs ADD COLUMN video TEXT",
        # sha256 -> times a whole copy with those bytes failed its check (JSON): the same
        # bytes failing three times settle the job, across restarts too.
        "ALTER TABLE jobs ADD COLUMN rejects TEXT NOT NULL DEFAULT '{}'",
    ),
    (
        # The job a variation (or a "like this" job) was made from: `from:N` finds them.
        "ALTER TABLE jobs ADD COLUMN source_id INTEGER",
        "CREATE INDEX jobs_source ON jobs(source_id) WHERE source_id IS NOT NULL",
    ),
    (
        # Picks from the web gallery or the dashboard: "star" / "reject" (NULL: none yet)
        # and when. The index serves `pick:star`.
        "ALTER TABLE jobs ADD COLUMN pick TEXT",
        "ALTER TABLE jobs ADD COLUMN picked_at REAL",
        "CREATE INDEX jobs_pick ON jobs(pick, created_at)",
    ),
    (
        # The machine whose disk holds `file` (set on a team's PostgreSQL history; NULL
        # here, where every file is on this machine). Kept in step with PG_MIGRATIONS.
        "ALTER TABLE jobs ADD COLUMN file_host TEXT",
    ),
    (
        # A team's engines follow jobs under leases (tui/engine/leases.py): `origin` is the
        # engine (machine) a job was recorded on, whose engine follows it so the video lands
        # there; `owner` holds the lease until `lease_until`, and `lease_epoch` grows with
        # every claim, so a write fenced by an older epoch is refused. On one person's file
        # the same columns are kept (one schema, one number) and the flock is the lease.
        "ALTER TABLE jobs ADD COLUMN origin TEXT",
        "ALTER TABLE jobs ADD COLUMN owner TEXT",
        "ALTER TABLE jobs ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN lease_until REAL",
        "CREATE INDEX jobs_owner ON jobs(owner, lease_until)",
        # stop and resume are asked of one machine's engine; NULL: whichever engine may.
        "ALTER TABLE requests ADD COLUMN target TEXT",
        # Each engine's heartbeat (doctor shows name, pid, lease age; a name held by a live
        # engine elsewhere is refused).
        """CREATE TABLE engines (
            name TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            home TEXT NOT NULL,
            output_dir TEXT NOT NULL,
            started_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL,
            stopped_at REAL
        )""",
        # One request budget per provider key, shared by every engine on it: the calls
        # sent in the sliding window, and a 429's Retry-After. key_id is a hash of the key,
        # never the key.
        """CREATE TABLE rate_spend (
            key_id TEXT NOT NULL,
            rate_class TEXT NOT NULL,
            at REAL NOT NULL,
            engine TEXT
        )""",
        "CREATE INDEX rate_spend_window ON rate_spend(key_id, rate_class, at)",
        """CREATE TABLE rate_blocks (
            key_id TEXT NOT NULL,
            rate_class TEXT NOT NULL,
            blocked_until REAL NOT NULL,
            PRIMARY KEY (key_id, rate_class)
        )""",
    ),
    (
        # Which engine wrote each event (NULL: a window or command): on a team's history
        # the timeline says which machine did what, and an audit can show that an engine
        # whose lease was taken wrote nothing after it.
        "ALTER TABLE events ADD COLUMN engine TEXT",
    ),
    (
        # Nothing here: on PostgreSQL this version tells engines which commits give them
        # work (PG_MIGRATIONS[10]). One person's file has one engine and no notices; its
        # data_version serves windows and engine alike. Kept so one number means one schema.
    ),
]


# The same history on PostgreSQL: PG_MIGRATIONS[n - 1] is the twin of MIGRATIONS[n - 1], so
# a schema version means the same tables on both backends (a test checks that they are as
# many). Append a twin with every new migration. The version is wan_tui_schema's one row.
# Differences that matter: DOUBLE PRECISION (PostgreSQL's REAL is 4 bytes), BIGSERIAL for
# AUTOINCREMENT (ids are never reused), and prompt search by a GIN index over a tsvector
# in place of FTS5 (same rules: words, prefixes, case and accents folded).
PG_MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE jobs (
            id BIGSERIAL PRIMARY KEY,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt TEXT NOT NULL,
            request_json TEXT NOT NULL,
            state TEXT NOT NULL,
            remote_id TEXT,
            result_url TEXT,
            quote_usd DOUBLE PRECISION,
            cost_usd DOUBLE PRECISION,
            cost_is_estimate INTEGER NOT NULL DEFAULT 0,
            file TEXT,
            bytes BIGINT,
            sha256 TEXT,
            error TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            submitted_at DOUBLE PRECISION,
            started_at DOUBLE PRECISION,
            ready_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            estimate_s DOUBLE PRECISION,
            progress DOUBLE PRECISION,
            remote_deleted INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX jobs_state ON jobs(state, created_at)",
        "CREATE INDEX jobs_created ON jobs(created_at)",
        "CREATE INDEX jobs_updated ON jobs(updated_at)",
        f"CREATE INDEX jobs_state_rank ON jobs(({_STATE_RANK}), created_at)",
        "CREATE INDEX jobs_model ON jobs(model, created_at)",
        "CREATE INDEX jobs_provider_model ON jobs(provider, model, created_at)",
        # NULLS FIRST: the order SQLite sorts in (rows.Dialect.sort_key).
        "CREATE INDEX jobs_cost ON jobs(cost_usd NULLS FIRST, created_at)",
        "CREATE INDEX jobs_submitted ON jobs(submitted_at)",
        "CREATE INDEX jobs_remote_id ON jobs(remote_id)",
        """CREATE TABLE events (
            id BIGSERIAL PRIMARY KEY,
            job_id BIGINT NOT NULL REFERENCES jobs(id),
            at DOUBLE PRECISION NOT NULL,
            state TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX events_job ON events(job_id, id)",
        """CREATE FUNCTION wan_tui_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'events are append-only'; END $$""",
        """CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
           FOR EACH ROW EXECUTE FUNCTION wan_tui_append_only()""",
        # unaccent ships with PostgreSQL (contrib) and is a trusted extension: the
        # database's owner may create it. Wrapped IMMUTABLE (with its dictionary named)
        # so an index can be built on it.
        "CREATE EXTENSION IF NOT EXISTS unaccent",
        """CREATE FUNCTION wan_tui_words(prompt TEXT) RETURNS tsvector
           LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
           $$ SELECT to_tsvector('pg_catalog.simple', unaccent('unaccent', prompt)) $$""",
        # Each word the user typed becomes a quoted prefix term, ANDed: never a syntax
        # error, whatever the text ("AND", quotes, colons are words like any other).
        """CREATE FUNCTION wan_tui_query(words TEXT) RETURNS tsquery
           LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
           $$ SELECT coalesce(string_agg(quote_literal(lexeme) || ':*', ' & '), '')::tsquery
              FROM unnest(wan_tui_words(words)) $$""",
        "CREATE INDEX jobs_prompt_words ON jobs USING GIN (wan_tui_words(prompt))",
        """CREATE TABLE models_cache (
            provider TEXT PRIMARY KEY,
            fetched_at DOUBLE PRECISION NOT NULL,
            models_json TEXT NOT NULL
        )""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # Every window and engine LISTENs on wan_tui: a commit that changes jobs or the
        # engine's requests tells them at once (one notice per statement, merged per
        # transaction by the server), instead of each polling.
        """CREATE FUNCTION wan_tui_notify() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_notify('wan_tui', TG_TABLE_NAME); RETURN NULL; END $$""",
        """CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OR DELETE ON jobs
           FOR EACH STATEMENT EXECUTE FUNCTION wan_tui_notify()""",
    ),
    (
        "ALTER TABLE jobs ADD COLUMN delete_pending INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX jobs_delete_pending ON jobs(id) WHERE delete_pending = 1",
    ),
    (
        "ALTER TABLE jobs ADD COLUMN batch_id BIGINT",
        "CREATE INDEX jobs_batch ON jobs(batch_id, created_at)",
    ),
    (
        """CREATE TABLE requests (
            id BIGSERIAL PRIMARY KEY,
            kind TEXT NOT NULL,
            job_id BIGINT,
            state TEXT NOT NULL DEFAULT 'new',
            taken_by INTEGER,
            result TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            finished_at DOUBLE PRECISION
        )""",
        "CREATE INDEX requests_open ON requests(state) WHERE state IN ('new', 'taken')",
        """CREATE TRIGGER requests_notify AFTER INSERT OR UPDATE ON requests
           FOR EACH STATEMENT EXECUTE FUNCTION wan_tui_notify()""",
    ),
    (
        "ALTER TABLE jobs ADD COLUMN video TEXT",
        "ALTER TABLE jobs ADD COLUMN rejects TEXT NOT NULL DEFAULT '{}'",
    ),
    (
        "ALTER TABLE jobs ADD COLUMN source_id BIGINT",
        "CREATE INDEX jobs_source ON jobs(source_id) WHERE source_id IS NOT NULL",
    ),
    (
        "ALTER TABLE jobs ADD COLUMN pick TEXT",
        "ALTER TABLE jobs ADD COLUMN picked_at DOUBLE PRECISION",
        "CREATE INDEX jobs_pick ON jobs(pick, created_at)",
    ),
    (
        # The machine whose disk holds `file` (a team's history: WAN_TUI_ENGINE_NAME or its
        # host name); NULL on one person's history, where it is this machine.
        "ALTER TABLE jobs ADD COLUMN file_host TEXT",
    ),
    (
        "ALTER TABLE jobs ADD COLUMN origin TEXT",
        "ALTER TABLE jobs ADD COLUMN owner TEXT",
        "ALTER TABLE jobs ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION",
        "CREATE INDEX jobs_owner ON jobs(owner, lease_until)",
        "ALTER TABLE requests ADD COLUMN target TEXT",
        """CREATE TABLE engines (
            name TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            home TEXT NOT NULL,
            output_dir TEXT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            heartbeat_at DOUBLE PRECISION NOT NULL,
            stopped_at DOUBLE PRECISION
        )""",
        """CREATE TABLE rate_spend (
            key_id TEXT NOT NULL,
            rate_class TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            engine TEXT
        )""",
        "CREATE INDEX rate_spend_window ON rate_spend(key_id, rate_class, at)",
        """CREATE TABLE rate_blocks (
            key_id TEXT NOT NULL,
            rate_class TEXT NOT NULL,
            blocked_until DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (key_id, rate_class)
        )""",
    ),
    (
        "ALTER TABLE events ADD COLUMN engine TEXT",
    ),
    (
        # Windows show every change, so every commit to jobs and requests still notifies
        # (payload: the table). An engine needs only the commits that may give it work,
        # told apart by payload 'work' (tui/store/postgres.py WORK): a job recorded, a job
        # claimed or given back (owner changed), one put back to pending (a submit that
        # was not sent), one made active again (`wan-tui resolve --charged`), a request
        # posted. Poll results, progress and lease renewals are not: while three engines
        # run a batch, each no longer looks for work at every other one's poll. The
        # server merges the identical notices of one transaction, so a 500-job batch is
        # one. `UPDATE OF state, owner`: updates naming neither column never reach the
        # WHEN. The active states are spelled out (a trigger keeps the text it was made
        # with); a test checks them against tui.jobs.ACTIVE_STATES.
        """CREATE FUNCTION wan_tui_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_notify('wan_tui', 'work'); RETURN NULL; END $$""",
        """CREATE TRIGGER jobs_work_insert AFTER INSERT ON jobs
           FOR EACH STATEMENT EXECUTE FUNCTION wan_tui_notify_work()""",
        f"""CREATE TRIGGER jobs_work_update AFTER UPDATE OF state, owner ON jobs
           FOR EACH ROW WHEN (NEW.owner IS DISTINCT FROM OLD.owner
               OR NEW.state <> OLD.state AND (NEW.state = 'pending'
                   OR NEW.state IN ({_ACTIVE_STATES}) AND OLD.state NOT IN ({_ACTIVE_STATES})))
           EXECUTE FUNCTION wan_tui_notify_work()""",
        """CREATE TRIGGER requests_work AFTER INSERT ON requests
           FOR EACH STATEMENT EXECUTE FUNCTION wan_tui_notify_work()""",
    ),
]
