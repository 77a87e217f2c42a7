-- Migration 7, the validation handshake (CONTRACT 5, `handshake: true`; CE webhook spec 4): the
-- latest handshake with each subscription's sink, kept in the file so that a restart does not
-- repeat a consented one. `fingerprint` is a salted hash of the sink URL it was made with.
CREATE TABLE IF NOT EXISTS handshakes (
    subscription TEXT PRIMARY KEY,
    fingerprint  TEXT NOT NULL,
    origin       TEXT NOT NULL,  -- the WebHook-Request-Origin sent
    allowed_rate REAL,           -- consented requests per second; NULL: unlimited
    error        TEXT,           -- why it was refused; NULL: consented
    at           REAL NOT NULL
) WITHOUT ROWID;

UPDATE meta SET value = '7' WHERE key = 'schema_version';
