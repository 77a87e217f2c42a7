-- Named queries of the SQLite store. Each block starts with `-- name: <name>`; parameters are
-- named (`:now`). Enum values are those of gateway.store.base (State, Kind).

-- Connection settings ---------------------------------------------------------------------

-- name: journal_wal
PRAGMA journal_mode = WAL;

-- name: synchronous_normal
PRAGMA synchronous = NORMAL;

-- name: synchronous_full
PRAGMA synchronous = FULL;

-- name: journal_mode
PRAGMA journal_mode;

-- name: synchronous
PRAGMA synchronous;

-- Transactions of the writer ----------------------------------------------------------------

-- name: begin
BEGIN IMMEDIATE;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;

-- name: savepoint
SAVEPOINT unit;

-- name: release
RELEASE unit;

-- name: rollback_unit
ROLLBACK TO unit;

-- Open ----------------------------------------------------------------------------------------

-- name: give_back_leases
-- This process owns the file, so every lease still set was left by a previous run.
UPDATE deliveries
SET lease = NULL, replica = NULL, due_at = MIN(due_at, :now), updated_at = :now
WHERE state = 0 AND lease IS NOT NULL;

-- name: count_pending
SELECT COUNT(*) FROM deliveries WHERE state = 0;

-- name: ping
SELECT 1;

-- Append --------------------------------------------------------------------------------------

-- name: dedupe_claim
-- Changes one row when the key is new or was last seen before :cutoff (not a duplicate).
INSERT INTO dedupe (source, id, seen_at) VALUES (:source, :id, :now)
ON CONFLICT (source, id) DO UPDATE SET seen_at = excluded.seen_at
WHERE dedupe.seen_at <= :cutoff;

-- name: event_insert
INSERT INTO events (source, id, type, attrs, data, kind, received_at, producer)
VALUES (:source, :id, :type, :attrs, :data, :kind, :now, :producer);

-- name: delivery_insert
INSERT INTO deliveries (event_seq, subscription, kind, state, attempts, due_at, ordering_key,
                        created_at, updated_at)
VALUES (:seq, :subscription, 0, 0, 0, :now, :ordering_key, :now, :now);

-- name: delivery_insert_leased
-- A row this process's dispatcher takes at once (Handoff): leased by the append itself, as
-- lease_mark leases a row (one attempt counted, due again when the lease ends).
INSERT INTO deliveries (event_seq, subscription, kind, state, attempts, due_at, ordering_key,
                        lease, replica, created_at, updated_at)
VALUES (:seq, :subscription, 0, 0, 1, :until, NULL, :lease, :replica, :now, :now);

-- Lease ---------------------------------------------------------------------------------------

-- name: any_due
SELECT 1 FROM deliveries
WHERE subscription = :subscription AND kind = :kind AND state = 0 AND due_at <= :now
LIMIT 1;

-- name: lease_due
-- An open breaker in the file (another worker process's) holds SINK rows (CONTRACT 5).
SELECT d.id, d.attempts, d.dl_reason, d.dl_status, d.dl_attempts, d.dl_sink,
       e.attrs, e.data, e.kind, e.received_at, d.ordering_key
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.subscription = :subscription AND d.kind = :kind AND d.state = 0 AND d.due_at <= :now
  AND NOT (:kind = 0 AND EXISTS (
      SELECT 1 FROM breakers AS b WHERE b.subscription = :subscription AND b.until > :now))
  -- Per-key ordering (CONTRACT 5): only the head of a key; an earlier pending row (in flight
  -- or waiting for its retry) holds the rest back. One probe of deliveries_ordering each.
  AND (d.ordering_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM deliveries AS h
      WHERE h.subscription = d.subscription AND h.kind = d.kind
        AND h.ordering_key = d.ordering_key AND h.state = 0 AND h.id < d.id))
ORDER BY d.due_at, d.id
LIMIT :limit;

-- name: lease_mark
UPDATE deliveries
SET attempts = attempts + 1, lease = :lease, due_at = :until, updated_at = :now,
    replica = :replica
WHERE id = :id;

-- name: park_followers
-- Per-key ordering: the rows waiting behind a keyed head (:id) are not due before :due_at (the
-- head's lease expiry or retry), so leases and next_due do not keep finding rows they cannot
-- take. Only a hint: the head test in lease_due is what orders.
UPDATE deliveries AS f SET due_at = :due_at
FROM (SELECT subscription, kind, ordering_key FROM deliveries
      WHERE id = :id AND ordering_key IS NOT NULL) AS h
WHERE f.subscription = h.subscription AND f.kind = h.kind AND f.ordering_key = h.ordering_key
  AND f.state = 0 AND f.id > :id AND f.lease IS NULL AND f.due_at <= :upto;

-- name: unpark_next
-- The head :id ended: the next row of its key, never attempted and parked, is due now.
UPDATE deliveries SET due_at = :now
WHERE id = (SELECT n.id FROM deliveries AS n JOIN deliveries AS h
              ON n.subscription = h.subscription AND n.kind = h.kind
             AND n.ordering_key = h.ordering_key
            WHERE h.id = :id AND n.state = 0 AND n.id > :id
            ORDER BY n.id LIMIT 1)
  AND lease IS NULL AND attempts = 0 AND due_at > :now;

-- name: next_due
-- The earliest due_at of a row a lease could take: a keyed row behind a pending row of its key
-- waits for that one (CONTRACT 5 ordering), so it does not make the dispatcher poll.
SELECT d.due_at FROM deliveries AS d
WHERE d.subscription = :subscription AND d.kind = :kind AND d.state = 0
  AND (d.ordering_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM deliveries AS h
      WHERE h.subscription = d.subscription AND h.kind = d.kind
        AND h.ordering_key = d.ordering_key AND h.state = 0 AND h.id < d.id))
ORDER BY d.due_at
LIMIT 1;

-- Finish (every update is fenced by the lease token) ----------------------------------------

-- name: finish_ack
UPDATE deliveries
SET state = 1, lease = NULL, finished_at = :now, updated_at = :now,
    last_status = :status, last_error = :error
WHERE id = :id AND lease = :lease AND state = 0;

-- name: finish_retry
-- :tried is 0 when the row is given back untried: its lease's attempt is not counted.
UPDATE deliveries
SET lease = NULL, due_at = :due_at, updated_at = :now, attempts = attempts - 1 + :tried,
    last_status = CASE WHEN :tried THEN :status ELSE last_status END,
    last_error = CASE WHEN :tried THEN :error ELSE last_error END
WHERE id = :id AND lease = :lease AND state = 0;

-- name: finish_dead
UPDATE deliveries
SET state = 2, lease = NULL, finished_at = :now, updated_at = :now,
    attempts = attempts - 1 + :tried,
    last_status = CASE WHEN :tried THEN :status ELSE last_status END,
    last_error = CASE WHEN :tried THEN :error ELSE last_error END,
    dl_reason = :reason, dl_status = :dl_status, dl_attempts = :dl_attempts, dl_sink = :sink
WHERE id = :id AND lease = :lease AND state = 0;

-- name: dead_letter_insert
-- The notice for a dead SINK row; a dead notice spawns none (kind = 0). Notices are never
-- ordered (CONTRACT 5 orders the sink's deliveries).
INSERT INTO deliveries (event_seq, subscription, kind, state, attempts, due_at, ordering_key,
                        dl_reason, dl_status, dl_attempts, dl_sink, created_at, updated_at)
SELECT event_seq, subscription, 1, 0, 0, :now, NULL,
       dl_reason, dl_status, dl_attempts, dl_sink, :now, :now
FROM deliveries WHERE id = :id AND kind = 0;

-- name: tally
-- What one finish added to a subscription's running tallies (gateway.store.tallies).
INSERT INTO tallies (subscription, replica, delivered, failed, last_status, last_error, last_at)
VALUES (:subscription, :replica, :delivered, :failed, :last_status, :last_error, :last_at)
ON CONFLICT (subscription, replica) DO UPDATE
SET delivered = delivered + excluded.delivered,
    failed = failed + excluded.failed,
    last_status = CASE WHEN excluded.last_at IS NULL THEN last_status ELSE excluded.last_status END,
    last_error = CASE WHEN excluded.last_at IS NULL THEN last_error ELSE excluded.last_error END,
    last_at = COALESCE(excluded.last_at, last_at);

-- name: attempt_log
INSERT INTO attempts (delivery_id, attempt, at, status, latency_ms, error)
VALUES (:id, :attempt, :now, :status, :latency_ms, :error);

-- Pause ---------------------------------------------------------------------------------------

-- name: pause
-- `sink` is redacted; `sink_fingerprint` tells whether the configured URL changed since.
INSERT INTO paused (subscription, sink, sink_fingerprint, reason, paused_at)
VALUES (:subscription, :sink, :fingerprint, :reason, :now)
ON CONFLICT (subscription) DO UPDATE
SET sink = excluded.sink, sink_fingerprint = excluded.sink_fingerprint, reason = excluded.reason,
    paused_at = excluded.paused_at;

-- name: resume
DELETE FROM paused WHERE subscription = :subscription;

-- name: paused
SELECT subscription, sink, sink_fingerprint, reason FROM paused ORDER BY subscription;

-- Circuit breakers (CONTRACT 5) --------------------------------------------------------------

-- name: breakers
SELECT subscription, until, cooldown, error FROM breakers ORDER BY subscription;

-- name: breaker_open
INSERT INTO breakers (subscription, until, cooldown, error, opened_at)
VALUES (:subscription, :until, :cooldown, :error, :now)
ON CONFLICT (subscription) DO UPDATE
SET until = excluded.until, cooldown = excluded.cooldown, error = excluded.error;

-- name: breaker_claim
-- Changes one row unless another holder's claim (or a newer opening) put `until` ahead of :now.
INSERT INTO breakers (subscription, until, cooldown, error, opened_at)
VALUES (:subscription, :until, :cooldown, :error, :now)
ON CONFLICT (subscription) DO UPDATE
SET until = excluded.until
WHERE breakers.until <= :now;

-- name: breaker_close
DELETE FROM breakers WHERE subscription = :subscription;

-- Dead letters --------------------------------------------------------------------------------

-- name: dead_letters_all
SELECT d.id, d.subscription, d.dl_reason, d.dl_status, COALESCE(d.dl_attempts, d.attempts),
       d.updated_at, e.attrs, e.data, e.kind, e.producer
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.state = 2 AND d.kind = 0
ORDER BY d.updated_at DESC, d.id DESC
LIMIT :limit;

-- name: dead_letters_of
SELECT d.id, d.subscription, d.dl_reason, d.dl_status, COALESCE(d.dl_attempts, d.attempts),
       d.updated_at, e.attrs, e.data, e.kind, e.producer
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.state = 2 AND d.kind = 0 AND d.subscription = :subscription
ORDER BY d.updated_at DESC, d.id DESC
LIMIT :limit;

-- name: redeliver
-- A fresh start: due now, with the whole retry budget again.
UPDATE deliveries
SET state = 0, due_at = :now, lease = NULL, attempts = 0, finished_at = NULL, updated_at = :now,
    dl_reason = NULL, dl_status = NULL, dl_attempts = NULL, dl_sink = NULL,
    batch = NULL  -- batch delivery: a redelivered row joins a new batch
WHERE id = :id AND state = 2 AND kind = 0;

-- Purge ---------------------------------------------------------------------------------------

-- name: purge_scan
-- The next events after :after, each with whether it is old and whether it can go.
SELECT e.seq,
       e.received_at < :cutoff,
       e.received_at < :cutoff AND NOT EXISTS (
           SELECT 1 FROM deliveries AS d
           WHERE d.event_seq = e.seq AND (d.state = 0 OR d.finished_at >= :cutoff))
FROM events AS e
WHERE e.seq > :after
ORDER BY e.seq
LIMIT :limit;

-- name: purge_attempts
DELETE FROM attempts
WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_seq = :seq);

-- name: purge_deliveries
DELETE FROM deliveries WHERE event_seq = :seq;

-- name: purge_event
DELETE FROM events WHERE seq = :seq;

-- name: purge_dedupe
DELETE FROM dedupe
WHERE (source, id) IN (SELECT source, id FROM dedupe WHERE seen_at <= :cutoff LIMIT :limit);

-- name: autocheckpoint_off
-- Checkpoints (which fsync the database file) run in the checkpointer's thread, not on the loop.
PRAGMA wal_autocheckpoint = 0;

-- name: checkpoint
PRAGMA wal_checkpoint(PASSIVE);

-- name: checkpoint_truncate
-- Only when idle: it holds off writers until the WAL file is emptied.
PRAGMA wal_checkpoint(TRUNCATE);

-- name: identity
SELECT value FROM meta WHERE key = 'identity';
