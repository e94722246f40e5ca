-- Cairn journal schema, version 2.
--
-- The journal is event-sourced: `events` is the only source of truth, an
-- append-only log of every transition of every run.  `runs` is a projection of
-- it (written in the same transaction as the events that change it) kept for
-- listing and for ownership; `definitions` holds the exact workflow source each
-- run is pinned to; `commands` holds requests made by other processes (cancel,
-- decisions) that the engine owning a run turns into events.
--
-- An engine makes events durable in its commit log first (DB-clog beside
-- this file, engine/clog.h) and applies them here in bulk, so these tables
-- may be some milliseconds behind a running engine; whoever opens the
-- journal after an engine died applies what its log still held.
--
-- The database is recognised by PRAGMA application_id = 0x4341524E ("CARN")
-- and PRAGMA user_version = 2 (version 1 journals are upgraded by the first
-- connection that writes); a file with another id is refused untouched.

-- The journal's identity: key 'journal_id' holds 32 hex digits, made at random
-- when the journal is created (or by the first connection that writes to a
-- journal made before it had one).  The commit log carries the same id in its
-- header and is refused beside any other journal (engine/clog.h).
CREATE TABLE IF NOT EXISTS meta (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS definitions (
    hash        TEXT PRIMARY KEY,          -- hex SHA-256 of source
    name        TEXT NOT NULL,             -- the workflow's `name`
    path        TEXT NOT NULL,             -- the file it was loaded from
    source      BLOB NOT NULL,             -- the exact bytes
    created_at  INTEGER NOT NULL           -- Unix ms
);

-- Every step id a run of a definition can journal, one a line, in the
-- engine's order (engine/journal.h, cairn_step_ids): what a reader folding
-- a run needs of its definition, without compiling it.  Written with the
-- definition; a definition stored before this table existed has no row,
-- and a reader then compiles it.  `cairn verify` always compiles.
CREATE TABLE IF NOT EXISTS definition_steps (
    hash        TEXT PRIMARY KEY REFERENCES definitions(hash),
    steps       TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,       -- append order across runs (rows go at the end)
    run_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL,          -- 1, 2, 3... per run, no gaps
    time        INTEGER NOT NULL,          -- Unix ms when the engine appended it
    type        TEXT NOT NULL,             -- see engine/event.h
    step        TEXT,                      -- step id, or NULL for run events
    attempt     INTEGER NOT NULL DEFAULT 0,
    data        TEXT NOT NULL,             -- canonical JSON object (sorted keys)
    hash        BLOB NOT NULL              -- HMAC-SHA-256(key, prev hash || canonical bytes)
);

-- A run's events by seq, built in bulk (engine/store_sqlite.c says why): every
-- event with id <= index_state.upto is listed here; the few after it (the
-- tail) are found by scanning.  A row lists one run's events first_seq,
-- first_seq + 1, ... by their ids, ascending, as LEB128 deltas
-- (common/idlist.h).  The store checks that seqs follow each other.
CREATE TABLE IF NOT EXISTS event_index (
    run_id      TEXT NOT NULL,
    first_seq   INTEGER NOT NULL,
    ids         BLOB NOT NULL,             -- events.id of first_seq, first_seq + 1, ...
    PRIMARY KEY (run_id, first_seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS index_state (
    one         INTEGER PRIMARY KEY CHECK (one = 1),
    upto        INTEGER NOT NULL
);
INSERT OR IGNORE INTO index_state(one, upto) VALUES (1, 0);

CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    workflow    TEXT NOT NULL,
    def_hash    TEXT NOT NULL REFERENCES definitions(hash),
    parent_id   TEXT,                      -- the run that started this one, if any
    status      TEXT NOT NULL,             -- running, paused, succeeded, failed, compensating, cancelled
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    owner       TEXT                       -- engine holding the run: "host:pid:starttime"
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs(created_at);

CREATE TABLE IF NOT EXISTS commands (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL,
    type        TEXT NOT NULL,             -- cancel, ...
    data        TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL
);

-- Requests that started runs, by the Idempotency-Key their client sent (the
-- HTTP API, server/backend.h): a repeat of the request answers with the run
-- the first one started.  The row is written (synced) before the run starts,
-- with the run's id chosen then, so a repeat after a crash between the two
-- starts that same id.  `request` is the hex SHA-256 of what was asked (the
-- workflow and the body): the same key with another request is refused.
CREATE TABLE IF NOT EXISTS idempotency (
    key         TEXT PRIMARY KEY,
    request     TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Claims: a key in a space, taken once, holding a value (journal.h,
-- cairn_journal_claim).  What must happen once however often, or by however
-- many servers, it is asked for: a webhook's dedupe key names the run it
-- started (space "dedupe/WORKFLOW"), a schedule's fire names its run, a
-- single-use link is spent.  A claim changes only by compare-and-set (its
-- value given as `replace`), so two writers never both win.
CREATE TABLE IF NOT EXISTS claims (
    space       TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (space, key)
) WITHOUT ROWID;
