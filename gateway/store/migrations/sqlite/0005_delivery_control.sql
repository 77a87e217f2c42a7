-- Migration 5, delivery control (CONTRACT 5). Open circuit breakers, one row per subscription whose breaker is
-- open; no row: closed. Kept in the file so that an open breaker survives a restart.
CREATE TABLE IF NOT EXISTS breakers (
    subscription TEXT PRIMARY KEY,
    until        REAL NOT NULL,  -- when a probe may go (pushed ahead by the probe's claim)
    cooldown     REAL NOT NULL,  -- doubled by each failed probe, up to a cap
    error        TEXT NOT NULL,  -- the failure that opened it last
    opened_at    REAL NOT NULL
) WITHOUT ROWID;

UPDATE meta SET value = '5' WHERE key = 'schema_version';
