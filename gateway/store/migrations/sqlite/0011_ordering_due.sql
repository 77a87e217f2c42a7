-- Migration 11 of the SQLite store: per-key ordering (CONTRACT 5). Leasing a keyed head parks
-- the rows behind it (`park_followers`), and only those still due need it; this index reaches
-- them directly. Without it each lease visited every row of the key, so a backlog of n rows per
-- key cost about n²/2 row visits to drain.
CREATE INDEX IF NOT EXISTS deliveries_ordering_due
    ON deliveries (subscription, kind, ordering_key, due_at)
    WHERE state = 0 AND ordering_key IS NOT NULL;

UPDATE meta SET value = '11' WHERE key = 'schema_version';
