-- Migration 1 of the SQLite store: the gateway's tables. Times are REAL Unix seconds; enums are
-- the integers of gateway.store.base. Every statement is idempotent, so files written before
-- the schema_migrations table existed take this migration as a no-op.
--
-- `meta.schema_version` is what gateways from before schema_migrations read to refuse a newer
-- file: every later migration sets it to its own version.

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');

-- One row per accepted event, kept for `retention` after its last delivery ended (replay).
-- seq is never reused, so it can serve as a replay cursor.
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    id          TEXT NOT NULL,
    type        TEXT NOT NULL,
    attrs       BLOB NOT NULL,         -- JSON object of the context attributes as received
    data        BLOB,                  -- the data bytes; NULL when the event has none
    kind        INTEGER NOT NULL,      -- gateway.event.DataKind
    received_at REAL NOT NULL,
    producer    TEXT                   -- the authenticated producer's name; NULL when anonymous
);

-- One row per (event, subscription) and per dead-letter notice. The id is the webhook-id, so
-- AUTOINCREMENT: ids are never reused, even after a purge.
CREATE TABLE IF NOT EXISTS deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq    INTEGER NOT NULL REFERENCES events (seq),
    subscription TEXT NOT NULL,
    kind         INTEGER NOT NULL,     -- Kind: 0 sink, 1 dead-letter notice
    state        INTEGER NOT NULL,     -- State: 0 pending, 1 delivered, 2 dead
    attempts     INTEGER NOT NULL,     -- attempts counted so far (a lease counts one)
    due_at       REAL NOT NULL,        -- pending: when it may be leased (a lease pushes it out)
    lease        INTEGER,              -- token of the current lease; NULL when not leased
    ordering_key TEXT,                 -- reserved: per-key ordered delivery
    last_status  INTEGER,
    last_error   TEXT,
    dl_reason    TEXT,                 -- dead rows and dead-letter notices: why
    dl_status    INTEGER,
    dl_attempts  INTEGER,
    dl_sink      TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    finished_at  REAL                  -- set when the row leaves PENDING
);

-- Leasing and next_due: only pending rows are indexed, so the index stays as small as the backlog.
CREATE INDEX IF NOT EXISTS deliveries_due
    ON deliveries (subscription, kind, due_at) WHERE state = 0;

-- Purge: "does this event still have a pending or recently finished delivery?" from the index.
CREATE INDEX IF NOT EXISTS deliveries_event
    ON deliveries (event_seq, state, finished_at);

-- Operators' listing of dead letters.
CREATE INDEX IF NOT EXISTS deliveries_dead
    ON deliveries (subscription, updated_at) WHERE state = 2;

-- The attempts log: one row per HTTP attempt whose outcome was recorded.
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    at          REAL NOT NULL,
    status      INTEGER,               -- NULL: no response
    latency_ms  REAL NOT NULL,
    error       TEXT
);

CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts (delivery_id, attempt);

-- (source, id) pairs seen within the dedupe window.
CREATE TABLE IF NOT EXISTS dedupe (
    source  TEXT NOT NULL,
    id      TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (source, id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS dedupe_seen ON dedupe (seen_at);

-- Subscriptions paused by a 410 Gone, with the sink that answered it.
CREATE TABLE IF NOT EXISTS paused (
    subscription TEXT PRIMARY KEY,
    sink         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    paused_at    REAL NOT NULL
) WITHOUT ROWID;
