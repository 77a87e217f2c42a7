-- Migration 7, the validation handshake (CONTRACT 5, `handshake: true`; CE webhook spec 4): the
-- latest handshake with each subscription's sink. Every replica reads it, so one consented
-- handshake serves the deployment and survives restarts. `fingerprint` is a salted hash of the
-- sink URL it was made with.
CREATE TABLE IF NOT EXISTS handshakes (
    subscription TEXT PRIMARY KEY,
    fingerprint  TEXT NOT NULL,
    origin       TEXT NOT NULL,     -- the WebHook-Request-Origin sent
    allowed_rate DOUBLE PRECISION,  -- consented requests per second; NULL: unlimited
    error        TEXT,              -- why it was refused; NULL: consented
    at           DOUBLE PRECISION NOT NULL
);
