-- Migration 5: open circuit breakers (CONTRACT 5), one row per subscription whose breaker is
-- open; no row: closed. Every replica reads them, so a breaker is shared by the deployment.
CREATE TABLE IF NOT EXISTS breakers (
    subscription TEXT PRIMARY KEY,
    until        DOUBLE PRECISION NOT NULL,  -- when a probe may go (pushed ahead by its claim)
    cooldown     DOUBLE PRECISION NOT NULL,  -- doubled by each failed probe, up to a cap
    error        TEXT NOT NULL,              -- the failure that opened it last
    opened_at    DOUBLE PRECISION NOT NULL
);
