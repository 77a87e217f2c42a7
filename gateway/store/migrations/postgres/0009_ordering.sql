-- Migration 9 of the PostgreSQL store: per-key ordering (CONTRACT 5, `delivery.ordering`). A
-- keyed row is leased only when no earlier pending row of its subscription, kind and key
-- exists; this index answers that with one probe, and holds only pending keyed rows.
CREATE INDEX IF NOT EXISTS deliveries_ordering
    ON deliveries (subscription, kind, ordering_key, id)
    WHERE state = 0 AND ordering_key IS NOT NULL;

-- Notices were written with their dead row's key before; notices are never ordered.
UPDATE deliveries SET ordering_key = NULL WHERE kind = 1 AND ordering_key IS NOT NULL;
