-- Migration 5, delivery control (CONTRACT 5). Open circuit breakers, one row per subscription whose breaker is
-- open; no row: closed. Every replica reads them, so a breaker is shared by the deployment.
CREATE TABLE IF NOT EXISTS breakers (
    subscription TEXT PRIMARY KEY,
    until        DOUBLE PRECISION NOT NULL,  -- when a probe may go (pushed ahead by its claim)
    cooldown     DOUBLE PRECISION NOT NULL,  -- doubled by each failed probe, up to a cap
    error        TEXT NOT NULL,              -- the failure that opened it last
    opened_at    DOUBLE PRECISION NOT NULL
);

-- Rate limits (CONTRACT 5, `rate_limit`): one token bucket per rate-limited subscription,
-- shared by the replicas; `granted` is what the last take got (read back by RETURNING).
CREATE TABLE IF NOT EXISTS rate_limits (
    subscription TEXT PRIMARY KEY,
    tokens       DOUBLE PRECISION NOT NULL,
    at           DOUBLE PRECISION NOT NULL,
    granted      INTEGER NOT NULL
);
