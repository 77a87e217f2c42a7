-- Migration 4 of the SQLite store: `paused.sink` keeps the sink redacted (no password, no query
-- values); `sink_fingerprint`, a salted slow hash of the URL as configured, tells whether the
-- configured sink changed since the pause. NULL on rows written before: their `sink` is the URL
-- as configured, and the gateway rewrites them redacted when it next starts.
--
-- The table is rebuilt rather than altered (SQLite has no ADD COLUMN IF NOT EXISTS), so that
-- the script stays idempotent like migration 1.

CREATE TABLE IF NOT EXISTS paused_v4 (
    subscription     TEXT PRIMARY KEY,
    sink             TEXT NOT NULL,
    sink_fingerprint TEXT,
    reason           TEXT NOT NULL,
    paused_at        REAL NOT NULL
) WITHOUT ROWID;

INSERT OR IGNORE INTO paused_v4 (subscription, sink, reason, paused_at)
SELECT subscription, sink, reason, paused_at FROM paused;

DROP TABLE paused;

ALTER TABLE paused_v4 RENAME TO paused;

UPDATE meta SET value = '4' WHERE key = 'schema_version';
