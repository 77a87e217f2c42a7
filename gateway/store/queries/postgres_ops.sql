-- Named queries of the PostgreSQL store for operators (CONTRACT 6): counts, dead letters by
-- filter, replay windows, one event's history, removed subscriptions. Counts are of the whole
-- deployment: any replica answers for all.

-- name: ops_pending
-- Backlog and oldest pending row, from the partial index of pending rows.
SELECT subscription, count(*), min(created_at)
FROM deliveries WHERE state = 0 AND kind = 0
GROUP BY subscription;

-- name: ops_dead
SELECT subscription, count(*)
FROM deliveries WHERE state = 2 AND kind = 0
GROUP BY subscription;

-- name: ops_tallies
-- Summed over replicas, with the latest failure of any of them.
SELECT subscription, sum(delivered), sum(failed),
       (array_agg(last_status ORDER BY last_at DESC NULLS LAST))[1],
       (array_agg(last_error ORDER BY last_at DESC NULLS LAST))[1],
       max(last_at)
FROM tallies
GROUP BY subscription;

-- name: ops_dead_letters
-- $1 after, $2 limit, $3 subscription, $4 since, $5 until, $6 event ids (NULL: any).
SELECT d.id, d.subscription, d.dl_reason, d.dl_status, COALESCE(d.dl_attempts, d.attempts),
       d.updated_at, e.attrs, e.data, e.kind, e.producer
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.state = 2 AND d.kind = 0 AND d.id > $1
  AND ($3::text IS NULL OR d.subscription = $3)
  AND ($4::double precision IS NULL OR d.updated_at >= $4)
  AND ($5::double precision IS NULL OR d.updated_at < $5)
  AND ($6::text[] IS NULL OR e.id = ANY ($6))
ORDER BY d.id
LIMIT $2;

-- name: ops_events_between
SELECT seq, attrs, data, kind, received_at, producer FROM events
WHERE seq > $1 AND received_at >= $2 AND received_at < $3
ORDER BY seq
LIMIT $4;

-- name: ops_requeue
-- $1 subscription, $2 event seqs, $3 now; $4, $5 NOTIFY. New rows (new webhook-ids), with the
-- ordering key the event's earlier row for this subscription had.
WITH added AS (
    INSERT INTO deliveries (event_seq, subscription, kind, state, attempts, due_at,
                            ordering_key, created_at, updated_at)
    SELECT e.seq, $1, 0, 0, 0, $3,
           (SELECT d.ordering_key FROM deliveries AS d
            WHERE d.event_seq = e.seq AND d.subscription = $1 AND d.kind = 0 LIMIT 1),
           $3, $3
    FROM events AS e WHERE e.seq = ANY ($2::bigint[])
    RETURNING 1
)
SELECT (SELECT count(*) FROM added) AS added,
       (SELECT count(pg_notify($4, $5)) FROM (SELECT FROM added LIMIT 1) AS due) AS woken;

-- name: ops_event
SELECT seq, attrs, data, kind, received_at, producer FROM events
WHERE source = $1 AND id = $2
ORDER BY seq DESC
LIMIT 1;

-- name: ops_event_deliveries
SELECT id, subscription, kind, state, attempts, due_at, created_at, finished_at, last_status,
       last_error, dl_reason
FROM deliveries WHERE event_seq = $1
ORDER BY id;

-- name: ops_event_attempts
SELECT delivery_id, attempt, at, status, latency_ms, error FROM attempts
WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_seq = $1)
ORDER BY delivery_id, at, attempt;

-- name: ops_expire_removed
-- $1 now, $2 cutoff, $3 the configured subscriptions.
UPDATE deliveries
SET state = 2, lease = NULL, finished_at = $1, updated_at = $1, dl_reason = 'removed',
    dl_attempts = attempts
WHERE state = 0 AND kind = 0 AND created_at < $2 AND (lease IS NULL OR due_at <= $1)
  AND subscription <> ALL ($3::text[]);

-- name: ops_replica_report
-- $1 replica, $2 generation, $3 loaded_at, $4 last_error, $5 seen_at.
INSERT INTO replicas (replica, generation, loaded_at, last_error, seen_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (replica) DO UPDATE SET generation = excluded.generation,
    loaded_at = excluded.loaded_at, last_error = excluded.last_error, seen_at = excluded.seen_at;

-- name: ops_replicas
SELECT replica, generation, loaded_at, last_error, seen_at FROM replicas
WHERE seen_at >= $1 ORDER BY replica;

-- name: ops_recent_attempts
-- The latest attempts to one subscription, newest first (the dashboard's subscription page).
SELECT a.delivery_id, a.attempt, a.at, a.status, a.latency_ms, a.error, e.source, e.id
FROM attempts AS a
JOIN deliveries AS d ON d.id = a.delivery_id
JOIN events AS e ON e.seq = d.event_seq
WHERE d.subscription = $1 AND d.kind = 0
ORDER BY a.at DESC, a.delivery_id DESC, a.attempt DESC
LIMIT $2;

-- Validation handshakes (CONTRACT 5, `handshake: true`) --------------------------------------

-- name: handshakes
SELECT subscription, fingerprint, origin, allowed_rate, error, at FROM handshakes
ORDER BY subscription;

-- name: handshake_save
-- $1 subscription, $2 fingerprint, $3 origin, $4 allowed_rate, $5 error, $6 at
INSERT INTO handshakes (subscription, fingerprint, origin, allowed_rate, error, at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (subscription) DO UPDATE
SET fingerprint = excluded.fingerprint, origin = excluded.origin,
    allowed_rate = excluded.allowed_rate, error = excluded.error, at = excluded.at;
