-- Named queries of batch delivery on PostgreSQL (CONTRACT 5, `mode: batch`;
-- gateway.store.postgres_batch). Only SINK rows (kind = 0) are batched. A batch lease runs in
-- one transaction under an advisory lock per (schema, subscription): replicas lease one
-- subscription's batches one at a time, so a group is never split between two of them.

-- name: batch_lock
-- $1 the lock's class, $2 the subscription.
SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || '/' || $2));

-- name: batch_group_due
-- The oldest due group ($1 subscription, $2 now): rows already sent together go together again.
-- An open breaker another replica stored holds them, as in `lease`.
SELECT batch FROM deliveries
WHERE subscription = $1 AND kind = 0 AND state = 0 AND batch IS NOT NULL AND due_at <= $2
  AND NOT EXISTS (SELECT 1 FROM breakers AS b WHERE b.subscription = $1 AND b.until > $2)
ORDER BY due_at, id
LIMIT 1;

-- name: batch_group_rows
-- $1 subscription, $2 the group.
SELECT d.id, d.attempts, d.dl_reason, d.dl_status, d.dl_attempts, d.dl_sink,
       e.attrs, e.data, e.kind, e.received_at, d.ordering_key
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.subscription = $1 AND d.kind = 0 AND d.state = 0 AND d.batch = $2
ORDER BY d.id;

-- name: batch_fresh_rows
-- Ungrouped due rows ($1 subscription, $2 now, $3 limit), oldest due first; the last column is
-- due_at (for the linger).
SELECT d.id, d.attempts, d.dl_reason, d.dl_status, d.dl_attempts, d.dl_sink,
       e.attrs, e.data, e.kind, e.received_at, d.ordering_key, d.due_at
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.subscription = $1 AND d.kind = 0 AND d.state = 0 AND d.batch IS NULL AND d.due_at <= $2
  AND NOT EXISTS (SELECT 1 FROM breakers AS b WHERE b.subscription = $1 AND b.until > $2)
  -- Per-key ordering (CONTRACT 5): a keyed row goes only when every earlier pending row of its
  -- key is ungrouped and sorts before it, so that a batch holds a prefix of each key and a key
  -- with a batch in flight (or retrying) waits for it.
  AND (d.ordering_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM deliveries AS p
      WHERE p.subscription = $1 AND p.kind = 0 AND p.state = 0
        AND p.ordering_key = d.ordering_key AND p.id < d.id
        AND (p.batch IS NOT NULL OR p.due_at > d.due_at)))
ORDER BY d.due_at, d.id
LIMIT $3;

-- name: batch_mark
-- $1 the rows' ids, $2 lease token, $3 lease expiry, $4 now, $5 replica, $6 the group.
UPDATE deliveries
SET attempts = attempts + 1, lease = $2, due_at = $3, updated_at = $4, replica = $5, batch = $6
WHERE id = ANY($1::bigint[]);
