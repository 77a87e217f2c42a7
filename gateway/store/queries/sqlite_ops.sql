-- Named queries of the SQLite store for operators (CONTRACT 6): counts, dead letters by filter,
-- replay windows, one event's history, removed subscriptions. Enums as in gateway.store.base.

-- name: ops_pending
-- Backlog and oldest pending row, from the partial index of pending rows.
SELECT subscription, COUNT(*), MIN(created_at)
FROM deliveries WHERE state = 0 AND kind = 0
GROUP BY subscription;

-- name: ops_dead
SELECT subscription, COUNT(*)
FROM deliveries WHERE state = 2 AND kind = 0
GROUP BY subscription;

-- name: ops_tallies
-- Summed over replicas; the bare columns are those of the row with the latest failure
-- (SQLite takes them from the row that gives MAX(last_at)).
SELECT subscription, SUM(delivered), SUM(failed), last_status, last_error, MAX(last_at)
FROM tallies
GROUP BY subscription;

-- name: ops_dead_letters
SELECT d.id, d.subscription, d.dl_reason, d.dl_status, COALESCE(d.dl_attempts, d.attempts),
       d.updated_at, e.attrs, e.data, e.kind, e.producer
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.state = 2 AND d.kind = 0 AND d.id > :after
  AND (:subscription IS NULL OR d.subscription = :subscription)
  AND (:since IS NULL OR d.updated_at >= :since)
  AND (:until IS NULL OR d.updated_at < :until)
  AND (:ids IS NULL OR e.id IN (SELECT value FROM json_each(:ids)))
ORDER BY d.id
LIMIT :limit;

-- name: ops_events_between
SELECT seq, attrs, data, kind, received_at, producer FROM events
WHERE seq > :after AND received_at >= :since AND received_at < :until
ORDER BY seq
LIMIT :limit;

-- name: ops_requeue
-- A new row (a new webhook-id), with the ordering key the event's earlier row for it had.
INSERT INTO deliveries (event_seq, subscription, kind, state, attempts, due_at, ordering_key,
                        created_at, updated_at)
SELECT e.seq, :subscription, 0, 0, 0, :now,
       (SELECT d.ordering_key FROM deliveries AS d
        WHERE d.event_seq = e.seq AND d.subscription = :subscription AND d.kind = 0 LIMIT 1),
       :now, :now
FROM events AS e WHERE e.seq = :seq;

-- name: ops_event
SELECT seq, attrs, data, kind, received_at, producer FROM events
WHERE source = :source AND id = :id
ORDER BY seq DESC
LIMIT 1;

-- name: ops_event_deliveries
SELECT id, subscription, kind, state, attempts, due_at, created_at, finished_at, last_status,
       last_error, dl_reason
FROM deliveries WHERE event_seq = :seq
ORDER BY id;

-- name: ops_event_attempts
SELECT delivery_id, attempt, at, status, latency_ms, error FROM attempts
WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_seq = :seq)
ORDER BY delivery_id, at, attempt;

-- name: ops_expire_removed
UPDATE deliveries
SET state = 2, lease = NULL, finished_at = :now, updated_at = :now, dl_reason = 'removed',
    dl_attempts = attempts
WHERE state = 0 AND kind = 0 AND created_at < :cutoff AND (lease IS NULL OR due_at <= :now)
  AND subscription NOT IN (SELECT value FROM json_each(:active));

-- name: ops_replica_report
INSERT INTO replicas (replica, generation, loaded_at, last_error, seen_at)
VALUES (:replica, :generation, :loaded_at, :last_error, :seen_at)
ON CONFLICT (replica) DO UPDATE SET generation = excluded.generation,
    loaded_at = excluded.loaded_at, last_error = excluded.last_error, seen_at = excluded.seen_at;

-- name: ops_replicas
SELECT replica, generation, loaded_at, last_error, seen_at FROM replicas
WHERE seen_at >= :since ORDER BY replica;

-- name: ops_recent_attempts
-- The latest attempts to one subscription, newest first (the dashboard's subscription page).
SELECT a.delivery_id, a.attempt, a.at, a.status, a.latency_ms, a.error, e.source, e.id
FROM attempts AS a
JOIN deliveries AS d ON d.id = a.delivery_id
JOIN events AS e ON e.seq = d.event_seq
WHERE d.subscription = :subscription AND d.kind = 0
ORDER BY a.at DESC, a.rowid DESC
LIMIT :limit;

-- Validation handshakes (CONTRACT 5, `handshake: true`) --------------------------------------

-- name: handshakes
SELECT subscription, fingerprint, origin, allowed_rate, error, at FROM handshakes
ORDER BY subscription;

-- name: handshake_save
INSERT INTO handshakes (subscription, fingerprint, origin, allowed_rate, error, at)
VALUES (:subscription, :fingerprint, :origin, :allowed_rate, :error, :at)
ON CONFLICT (subscription) DO UPDATE
SET fingerprint = excluded.fingerprint, origin = excluded.origin,
    allowed_rate = excluded.allowed_rate, error = excluded.error, at = excluded.at;
