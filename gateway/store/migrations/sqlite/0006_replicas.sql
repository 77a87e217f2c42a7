-- Migration 6 of the SQLite store: what each replica reports of itself (the config generation it
-- runs, when it was loaded, its last refused reload), so `gateway status` shows config drift.
-- One process owns a SQLite file, so this holds one row; the table is the PostgreSQL store's.

CREATE TABLE IF NOT EXISTS replicas (
    replica    TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    loaded_at  REAL NOT NULL,
    last_error TEXT,
    seen_at    REAL NOT NULL
);

UPDATE meta SET value = '6' WHERE key = 'schema_version';
