-- Cairn journal schema for PostgreSQL, version 1 (engine/store_pg.c).
--
-- The same journal as schema/journal.sql, in PostgreSQL's types: `events`
-- is the only source of truth; `runs` is its projection, written in the
-- transaction of the events that change it; `definitions` the exact source
-- each run is pinned to; `commands`, `idempotency` and `claims` as there.
-- There is no commit log: every batch is one transaction, durable when it
-- commits (synchronous_commit on).
--
-- The database (its current schema, usually `public`) is recognised by the
-- table cairn_journal, one row: app 'cairn', the schema version.  Cairn
-- creates these tables in a schema that holds no table at all, and refuses,
-- untouched, one that holds tables but not cairn_journal, or a version it
-- does not know.  Text that the chain covers (events.data) is stored as
-- the bytes it was hashed from: the database must be UTF8 (or SQL_ASCII).
-- Identifiers and names sort by bytes (COLLATE "C"), as SQLite sorts them.
--
-- The key that the chains are under is never here: the database's editors
-- are who the chain guards against (docs/operations.md says where it is).

CREATE TABLE cairn_journal (
    one         integer PRIMARY KEY CHECK (one = 1),
    app         text NOT NULL,             -- 'cairn'
    version     integer NOT NULL           -- of this schema
);

-- 'journal_id' (32 hex digits, made at random when the journal is created)
-- and 'key_check' (engine/store.h, cairn_journal_key_check).
CREATE TABLE meta (
    key         text COLLATE "C" PRIMARY KEY,
    value       text NOT NULL
);

CREATE TABLE definitions (
    hash        text COLLATE "C" PRIMARY KEY,   -- hex SHA-256 of source
    name        text COLLATE "C" NOT NULL,
    path        text NOT NULL,
    source      bytea NOT NULL,            -- the exact bytes
    created_at  bigint NOT NULL,           -- Unix ms; the newest load of a name wins
    loaded      bigserial                  -- ties of created_at: the later load
);
CREATE INDEX definitions_by_name ON definitions(name, created_at);

CREATE TABLE definition_steps (
    hash        text COLLATE "C" PRIMARY KEY REFERENCES definitions(hash),
    steps       text NOT NULL
);

CREATE TABLE events (
    id          bigserial PRIMARY KEY,     -- append order across runs
    run_id      text COLLATE "C" NOT NULL,
    seq         bigint NOT NULL,           -- 1, 2, 3... per run, no gaps
    time        bigint NOT NULL,
    type        text NOT NULL,
    step        text,
    attempt     integer NOT NULL DEFAULT 0,
    data        text NOT NULL,             -- canonical JSON, the bytes the chain hashed
    hash        bytea NOT NULL,            -- HMAC-SHA-256(key, prev hash || canonical bytes)
    UNIQUE (run_id, seq)                   -- a second writer's event is refused
);

CREATE TABLE runs (
    id          text COLLATE "C" PRIMARY KEY,
    workflow    text NOT NULL,
    def_hash    text COLLATE "C" NOT NULL REFERENCES definitions(hash),
    parent_id   text,
    status      text NOT NULL,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    owner       text,                      -- engine holding the run: "host:pid:starttime"
    epoch       bigint NOT NULL DEFAULT 0  -- the hold's fencing token: each claim takes the next
);
CREATE INDEX runs_by_status ON runs(status);
CREATE INDEX runs_by_created ON runs(created_at, id);
CREATE INDEX runs_by_owner ON runs(owner);

-- Leases, for several engines on one database: an engine's row, renewed
-- while it lives (engine/journal_lease.c); past lease_until (the database's
-- clock, Unix ms) the runs it holds may be claimed by another engine, and
-- that claim's new epoch refuses the old holder's late writes (every batch
-- checks that its runs are still its engine's at the epoch it holds).  An
-- engine that stops cleanly deletes its row.
CREATE TABLE engines (
    owner       text COLLATE "C" PRIMARY KEY,
    started_at  bigint NOT NULL,
    lease_until bigint NOT NULL
);

CREATE TABLE commands (
    id          bigserial PRIMARY KEY,
    run_id      text COLLATE "C" NOT NULL,
    type        text NOT NULL,
    data        text NOT NULL DEFAULT '{}',
    created_at  bigint NOT NULL
);
CREATE INDEX commands_by_run ON commands(run_id);

CREATE TABLE idempotency (
    key         text COLLATE "C" PRIMARY KEY,
    request     text NOT NULL,
    run_id      text NOT NULL,
    created_at  bigint NOT NULL
);

CREATE TABLE claims (
    space       text COLLATE "C" NOT NULL,
    key         text COLLATE "C" NOT NULL,
    value       text NOT NULL,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    PRIMARY KEY (space, key)
);
