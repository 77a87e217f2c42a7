-- Migration 1 of the PostgreSQL store: the gateway's tables, with the same tables and columns as
-- the SQLite store. Times are double precision Unix seconds (the store's float times); enums
-- are the integers of gateway.store.base. Tables are created in the first schema of the
-- connection's search_path.

-- One row per accepted event, kept for `retention` after its last delivery ended (replay).
-- seq is never reused, so it can serve as a replay cursor. The append statement draws it from
-- its sequence by name.
CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME events_seq_seq) PRIMARY KEY,
    source      TEXT NOT NULL,
    id          TEXT NOT NULL,
    type        TEXT NOT NULL,
    attrs       BYTEA NOT NULL,        -- JSON object of the context attributes as received
    data        BYTEA,                 -- the data bytes; NULL when the event has none
    kind        SMALLINT NOT NULL,     -- gateway.event.DataKind
    received_at DOUBLE PRECISION NOT NULL,
    producer    TEXT                   -- the authenticated producer's name; NULL when anonymous
);

-- One row per (event, subscription) and per dead-letter notice. The id is the webhook-id: an
-- identity is never reused, even after a purge or a rolled-back transaction. event_seq is the
-- event's seq; as on SQLite, no foreign key checks it: the store writes an event and its rows in
-- one transaction and purges them together, and the check would cost a lookup per row appended.
CREATE TABLE deliveries (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_seq    BIGINT NOT NULL,
    subscription TEXT NOT NULL,
    kind         SMALLINT NOT NULL,    -- Kind: 0 sink, 1 dead-letter notice
    state        SMALLINT NOT NULL,    -- State: 0 pending, 1 delivered, 2 dead
    attempts     INTEGER NOT NULL,     -- attempts counted so far (a lease counts one)
    due_at       DOUBLE PRECISION NOT NULL,  -- pending: when it may be leased (a lease pushes it)
    lease        BIGINT,               -- token of the current lease; NULL when not leased
    ordering_key TEXT,                 -- reserved: per-key ordered delivery
    last_status  INTEGER,
    last_error   TEXT,
    dl_reason    TEXT,                 -- dead rows and dead-letter notices: why
    dl_status    INTEGER,
    dl_attempts  INTEGER,
    dl_sink      TEXT,
    created_at   DOUBLE PRECISION NOT NULL,
    updated_at   DOUBLE PRECISION NOT NULL,
    finished_at  DOUBLE PRECISION      -- set when the row leaves PENDING
);

-- A queue table: every lease and outcome rewrites rows, so vacuum it well before the default
-- 20% of dead rows.
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.02,
                            autovacuum_analyze_scale_factor = 0.02);

-- Leasing and next_due: only pending rows are indexed, in exactly the lease order.
CREATE INDEX deliveries_due ON deliveries (subscription, kind, due_at, id) WHERE state = 0;

-- Purge: "does this event still have a pending or recently finished delivery?" from the index.
CREATE INDEX deliveries_event ON deliveries (event_seq, state, finished_at);

-- Operators' listing of dead letters.
CREATE INDEX deliveries_dead ON deliveries (subscription, updated_at) WHERE state = 2;

-- The attempts log: one row per HTTP attempt whose outcome was recorded.
CREATE TABLE attempts (
    delivery_id BIGINT NOT NULL,
    attempt     INTEGER NOT NULL,
    at          DOUBLE PRECISION NOT NULL,
    status      INTEGER,               -- NULL: no response
    latency_ms  DOUBLE PRECISION NOT NULL,
    error       TEXT
);

CREATE INDEX attempts_delivery ON attempts (delivery_id, attempt);

-- (source, id) pairs seen within the dedupe window; the primary key makes dedupe hold across
-- replicas (a concurrent insert of the same key waits for the first one's commit).
CREATE TABLE dedupe (
    source  TEXT NOT NULL,
    id      TEXT NOT NULL,
    seen_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (source, id)
);

CREATE INDEX dedupe_seen ON dedupe (seen_at);

-- Subscriptions paused by a 410 Gone, with the sink that answered it.
CREATE TABLE paused (
    subscription TEXT PRIMARY KEY,
    sink         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    paused_at    DOUBLE PRECISION NOT NULL
);
