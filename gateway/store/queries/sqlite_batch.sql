-- Named queries of batch delivery on SQLite (CONTRACT 5, `mode: batch`; gateway.store.sqlite_batch).
-- Only SINK rows (kind = 0) are batched; an open breaker in the file holds them, as `lease_due`.

-- name: batch_group_due
-- The oldest due group: rows already sent together are leased together again.
SELECT batch FROM deliveries
WHERE subscription = :subscription AND kind = 0 AND state = 0 AND batch IS NOT NULL
  AND due_at <= :now
  AND NOT EXISTS (
      SELECT 1 FROM breakers AS b WHERE b.subscription = :subscription AND b.until > :now)
ORDER BY due_at, id
LIMIT 1;

-- name: batch_group_rows
SELECT d.id, d.attempts, d.dl_reason, d.dl_status, d.dl_attempts, d.dl_sink,
       e.attrs, e.data, e.kind, e.received_at, d.ordering_key
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.subscription = :subscription AND d.kind = 0 AND d.state = 0 AND d.batch = :batch
ORDER BY d.id;

-- name: batch_fresh_rows
-- Ungrouped due rows, oldest due first; the last column is due_at (for the linger).
SELECT d.id, d.attempts, d.dl_reason, d.dl_status, d.dl_attempts, d.dl_sink,
       e.attrs, e.data, e.kind, e.received_at, d.ordering_key, d.due_at
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.subscription = :subscription AND d.kind = 0 AND d.state = 0 AND d.batch IS NULL
  AND d.due_at <= :now
  AND NOT EXISTS (
      SELECT 1 FROM breakers AS b WHERE b.subscription = :subscription AND b.until > :now)
  -- Per-key ordering (CONTRACT 5): a keyed row goes only when every earlier pending row of its
  -- key is ungrouped and sorts before it, so that a batch holds a prefix of each key and a key
  -- with a batch in flight (or retrying) waits for it.
  AND (d.ordering_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM deliveries AS p
      WHERE p.subscription = :subscription AND p.kind = 0 AND p.state = 0
        AND p.ordering_key = d.ordering_key AND p.id < d.id
        AND (p.batch IS NOT NULL OR p.due_at > d.due_at)))
ORDER BY d.due_at, d.id
LIMIT :limit;

-- name: batch_mark
UPDATE deliveries
SET attempts = attempts + 1, lease = :lease, due_at = :until, updated_at = :now,
    replica = :replica, batch = :batch
WHERE id = :id;
