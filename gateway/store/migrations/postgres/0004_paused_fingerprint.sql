-- Migration 4 of the PostgreSQL store: `paused.sink` keeps the sink redacted (no password, no
-- query values); `sink_fingerprint`, a salted slow hash of the URL as configured, tells whether
-- the configured sink changed since the pause. NULL on rows written before: their `sink` is the
-- URL as configured, and the gateway rewrites them redacted when it next starts.

ALTER TABLE paused ADD COLUMN sink_fingerprint TEXT;
