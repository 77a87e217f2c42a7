-- Named queries of the PostgreSQL store. Each block starts with `-- name: <name>`; parameters are
-- positional ($1). Enum values are those of gateway.store.base (State, Kind). Statements that
-- take arrays apply the work of several calls in one round trip (group commit). A statement that
-- makes rows due also NOTIFYs the other replicas (channel and payload are its last parameters);
-- the notification leaves when the transaction commits, and identical ones are sent once.

-- Connection ----------------------------------------------------------------------------------

-- name: ping
SELECT 1;

-- name: schema
SELECT current_schema();

-- name: probe_lock_timeout
-- Readiness: the probe's lock waits end after $1 (this transaction only).
SELECT set_config('lock_timeout', $1, true);

-- name: probe_write_locks
-- The locks an append takes: a lock held against writers (LOCK TABLE, a long migration) makes
-- this wait, then fail. Nothing is written; the transaction is rolled back.
LOCK TABLE events, deliveries, dedupe IN ROW EXCLUSIVE MODE;

-- Replica identity ----------------------------------------------------------------------------

-- name: replica_lock
-- Held by the listening session while the process lives: one live gateway per identity.
-- $1 lock class, $2 the identity; the schema keeps deployments apart.
SELECT pg_try_advisory_lock($1, hashtext(current_schema() || '/' || $2));

-- name: give_back_leases
-- At open, holding the identity's lock: leases still marked with it were left by this replica's
-- previous run (a crash); their rows are due again now instead of at lease expiry.
UPDATE deliveries
SET lease = NULL, replica = NULL, due_at = LEAST(due_at, $2), updated_at = $2
WHERE replica = $1 AND state = 0 AND lease IS NOT NULL;

-- name: count_pending
SELECT count(*) FROM deliveries WHERE state = 0;

-- Append --------------------------------------------------------------------------------------

-- name: order_lock
-- Per-key ordering (CONTRACT 5): held until commit by an append that writes rows of these
-- (subscription $2, key $3) pairs, so that a concurrent append of the same key (another
-- replica) draws its row ids after this one commits: within a key, ids follow commit order, and
-- a lease never finds a key's head missing because it was not committed yet. Taken in one
-- order (sorted) so that two appends cannot deadlock; $1 the lock class.
SELECT count(pg_advisory_xact_lock($1, sorted.h))
FROM (SELECT DISTINCT hashtext(current_schema() || '/' || s || '/' || k) AS h
      FROM unnest($2::text[], $3::text[]) AS t (s, k)
      ORDER BY h OFFSET 0) AS sorted;

-- name: append
-- Events in which no (source, id) repeats. $1 the dedupe window in seconds; per event: $2
-- ordinal, $3 now, $4 source, $5 id, $6 type, $7 attrs, $8 data, $9 kind, $10 producer; per
-- delivery row: $11 ordinal of its event, $12 subscription, $13 ordering key; $14, $15 NOTIFY.
-- A key is claimed when it is new or was last seen a whole window ago; a concurrent claim of the
-- same key (another replica) waits for that transaction and then sees its row.
-- Returns the ordinals of the events stored (the others are duplicates). Rows are matched by
-- ordinal, never by text, and the seq is drawn before the insert: a cached (generic) plan, made
-- without the arrays' lengths, then stays linear in the number of events.
WITH input AS (
    SELECT *
    FROM unnest($2::int[], $3::float8[], $4::text[], $5::text[], $6::text[], $7::bytea[],
                $8::bytea[], $9::smallint[], $10::text[])
        AS t (ordinal, now, source, id, type, attrs, data, kind, producer)
),
claimed AS (
    INSERT INTO dedupe AS seen (source, id, seen_at)
    SELECT source, id, now FROM input ORDER BY source, id
    ON CONFLICT (source, id) DO UPDATE SET seen_at = excluded.seen_at
    WHERE seen.seen_at <= excluded.seen_at - $1
    RETURNING source, id
),
fresh AS MATERIALIZED (
    -- The event's seq is drawn here, so its delivery rows find it by ordinal.
    SELECT input.*, nextval('events_seq_seq') AS seq
    FROM input JOIN claimed USING (source, id)
    ORDER BY ordinal
),
stored AS (
    INSERT INTO events (seq, source, id, type, attrs, data, kind, received_at, producer)
    OVERRIDING SYSTEM VALUE
    SELECT seq, source, id, type, attrs, data, kind, now, producer FROM fresh
),
routed AS (
    INSERT INTO deliveries (event_seq, subscription, kind, state, attempts, due_at, ordering_key,
                            created_at, updated_at)
    SELECT fresh.seq, r.subscription, 0, 0, 0, fresh.now, r.ordering_key, fresh.now, fresh.now
    FROM unnest($11::int[], $12::text[], $13::text[]) WITH ORDINALITY
        AS r (ordinal, subscription, ordering_key, position)
    JOIN fresh USING (ordinal)
    ORDER BY r.position
    RETURNING 1
)
SELECT (SELECT array_agg(ordinal) FROM fresh) AS stored,
       (SELECT count(pg_notify($14, $15)) FROM (SELECT FROM routed LIMIT 1) AS due) AS woken;

-- Lease ---------------------------------------------------------------------------------------

-- name: lease
-- $1 subscription, $2 kind, $3 now, $4 limit, $5 lease token, $6 lease expiry, $7 the replica.
-- SKIP LOCKED: rows another replica is leasing right now are passed over, never handed out
-- twice; a row leased and committed meanwhile fails the due_at test when it is re-checked.
-- A breaker another replica opened (and stored) holds SINK rows here at once, before this
-- replica's next read of the breakers table: the rows it gives back are never re-leased early.
--
-- Per-key ordering (CONTRACT 5): a keyed row is taken only as the head of its key (no earlier
-- pending row: one probe of deliveries_ordering). Two replicas never hold two rows of one key:
-- both see the same head (ids of a key follow commit order, see order_lock) and SKIP LOCKED
-- gives it to one; the other sees the head PENDING in its snapshot, so the next row is not a
-- head for it, and a head leased and committed meanwhile fails the due_at re-check. `parked`
-- makes the rows behind a leased head due at its lease's end (a hint for leases and next_due;
-- the head test is what orders).
WITH due AS (
    SELECT id, due_at, ordering_key FROM deliveries AS d
    WHERE subscription = $1 AND kind = $2 AND state = 0 AND due_at <= $3
      AND NOT ($2 = 0 AND EXISTS (
          SELECT 1 FROM breakers AS b WHERE b.subscription = $1 AND b.until > $3))
      AND (ordering_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM deliveries AS h
          WHERE h.subscription = $1 AND h.kind = $2 AND h.ordering_key = d.ordering_key
            AND h.state = 0 AND h.id < d.id))
    ORDER BY due_at, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
),
marked AS (
    UPDATE deliveries AS d
    SET attempts = d.attempts + 1, lease = $5, due_at = $6, updated_at = $3, replica = $7
    FROM due
    WHERE d.id = due.id
    RETURNING d.id, d.event_seq, d.attempts, d.dl_reason, d.dl_status, d.dl_attempts, d.dl_sink,
              due.due_at AS was_due, d.ordering_key
),
parked AS (
    UPDATE deliveries AS f
    SET due_at = $6
    FROM due
    WHERE due.ordering_key IS NOT NULL
      AND f.subscription = $1 AND f.kind = $2 AND f.ordering_key = due.ordering_key
      AND f.state = 0 AND f.id > due.id AND f.lease IS NULL AND f.due_at <= $3
)
SELECT m.id, m.attempts, m.dl_reason, m.dl_status, m.dl_attempts, m.dl_sink,
       e.attrs, e.data, e.kind, e.received_at, m.ordering_key
FROM marked AS m JOIN events AS e ON e.seq = m.event_seq
ORDER BY m.was_due, m.id;

-- name: unlease
-- The rows of a lease ($1 its token) whose answer never arrived: untried, due again now ($2).
UPDATE deliveries
SET lease = NULL, replica = NULL, attempts = attempts - 1, due_at = $2, updated_at = $2
WHERE lease = $1 AND state = 0;

-- name: next_due
-- One index probe per (subscription, kind). A keyed row behind a pending row of its key waits
-- for that one (CONTRACT 5 ordering) and is skipped, so it does not make the dispatcher poll.
SELECT min(due.at)
FROM unnest($1::text[]) AS s (name)
CROSS JOIN (VALUES (0::smallint), (1::smallint)) AS k (kind)
CROSS JOIN LATERAL (
    SELECT d.due_at AS at FROM deliveries AS d
    WHERE d.subscription = s.name AND d.kind = k.kind AND d.state = 0
      AND (d.ordering_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM deliveries AS h
          WHERE h.subscription = s.name AND h.kind = k.kind
            AND h.ordering_key = d.ordering_key AND h.state = 0 AND h.id < d.id))
    ORDER BY d.due_at
    LIMIT 1
) AS due;

-- Finish (every update is fenced by the lease token) ----------------------------------------

-- name: finish
-- Per outcome: $1 now, $2 delivery id, $3 lease, $4 action (0 ack, 1 retry, 2 dead), $5 next
-- due time (retry), $6 tried (false: given back untried, its lease's attempt is not counted),
-- $7 status, $8 error, $9 attempt number, $10 latency_ms; dead: $11 reason, $12 status,
-- $13 attempts, $14 sink, $15 queue a dead-letter notice; $16, $17 NOTIFY; $18 the replica.
-- Returns how many rows ended and how many notices were queued.
WITH outcome AS (
    SELECT *
    FROM unnest($1::float8[], $2::bigint[], $3::bigint[], $4::smallint[], $5::float8[],
                $6::bool[], $7::int[], $8::text[], $9::int[], $10::float8[], $11::text[],
                $12::int[], $13::int[], $14::text[], $15::bool[])
        AS o (now, id, lease, action, due_at, tried, status, error, attempt, latency_ms,
              reason, dl_status, dl_attempts, sink, notify)
),
changed AS (
    UPDATE deliveries AS d
    SET state = CASE o.action WHEN 0 THEN 1 WHEN 1 THEN 0 ELSE 2 END,
        lease = NULL,
        due_at = CASE WHEN o.action = 1 THEN o.due_at ELSE d.due_at END,
        finished_at = CASE WHEN o.action = 1 THEN d.finished_at ELSE o.now END,
        updated_at = o.now,
        attempts = CASE WHEN o.tried THEN d.attempts ELSE d.attempts - 1 END,
        last_status = CASE WHEN o.tried THEN o.status ELSE d.last_status END,
        last_error = CASE WHEN o.tried THEN o.error ELSE d.last_error END,
        dl_reason = CASE WHEN o.action = 2 THEN o.reason ELSE d.dl_reason END,
        dl_status = CASE WHEN o.action = 2 THEN o.dl_status ELSE d.dl_status END,
        dl_attempts = CASE WHEN o.action = 2 THEN o.dl_attempts ELSE d.dl_attempts END,
        dl_sink = CASE WHEN o.action = 2 THEN o.sink ELSE d.dl_sink END
    FROM outcome AS o
    WHERE d.id = o.id AND d.lease = o.lease AND d.state = 0
    RETURNING d.id, d.event_seq, d.subscription, d.kind, d.ordering_key, d.due_at, o.now,
              o.action, o.tried, o.status, o.error, o.attempt, o.latency_ms, o.reason,
              o.dl_status, o.dl_attempts, o.sink, o.notify
),
parked AS (
    -- Per-key ordering (CONTRACT 5): the rows behind a retried head wait for its retry (a hint).
    UPDATE deliveries AS f
    SET due_at = c.due_at
    FROM changed AS c
    WHERE c.action = 1 AND c.ordering_key IS NOT NULL
      AND f.subscription = c.subscription AND f.kind = c.kind
      AND f.ordering_key = c.ordering_key AND f.state = 0 AND f.id > c.id
      AND f.lease IS NULL AND f.due_at <= c.due_at
),
unparked AS (
    -- ... and a head that ended makes its key's next row (never attempted) due now.
    UPDATE deliveries AS n
    SET due_at = c.now
    FROM changed AS c
    WHERE c.action <> 1 AND c.ordering_key IS NOT NULL
      AND n.id = (SELECT min(x.id) FROM deliveries AS x
                  WHERE x.subscription = c.subscription AND x.kind = c.kind
                    AND x.ordering_key = c.ordering_key AND x.state = 0 AND x.id > c.id)
      AND n.lease IS NULL AND n.attempts = 0 AND n.due_at > c.now
),
notices AS (
    -- The notice for a dead SINK row; a dead notice spawns none (kind = 0). Notices are never
    -- ordered (CONTRACT 5 orders the sink's deliveries).
    INSERT INTO deliveries (event_seq, subscription, kind, state, attempts, due_at, ordering_key,
                            dl_reason, dl_status, dl_attempts, dl_sink, created_at, updated_at)
    SELECT event_seq, subscription, 1, 0, 0, now, NULL,
           reason, dl_status, dl_attempts, sink, now, now
    FROM changed WHERE action = 2 AND notify AND kind = 0
    ORDER BY id
    RETURNING 1
),
logged AS (
    INSERT INTO attempts (delivery_id, attempt, at, status, latency_ms, error)
    SELECT id, attempt, now, status, latency_ms, error FROM changed WHERE tried
),
tallied AS (
    -- This replica's running tallies (gateway.store.tallies): delivered and failed attempts.
    INSERT INTO tallies AS t (subscription, replica, delivered, failed, last_status, last_error,
                              last_at)
    SELECT subscription, $18, count(*) FILTER (WHERE action = 0), count(*) FILTER (WHERE failed),
           (array_agg(status ORDER BY now DESC) FILTER (WHERE failed))[1],
           (array_agg(error ORDER BY now DESC) FILTER (WHERE failed))[1],
           max(now) FILTER (WHERE failed)
    FROM (SELECT subscription, action, status, error, now,
                 tried AND (status IS NULL OR status < 200 OR status >= 300) AS failed
          FROM changed WHERE kind = 0) AS c
    GROUP BY subscription
    ON CONFLICT (subscription, replica) DO UPDATE
    SET delivered = t.delivered + excluded.delivered,
        failed = t.failed + excluded.failed,
        last_status = CASE WHEN excluded.last_at IS NULL THEN t.last_status
                           ELSE excluded.last_status END,
        last_error = CASE WHEN excluded.last_at IS NULL THEN t.last_error
                          ELSE excluded.last_error END,
        last_at = COALESCE(excluded.last_at, t.last_at)
)
SELECT (SELECT count(*) FROM changed WHERE action <> 1) AS ended,
       (SELECT count(*) FROM notices) AS queued,
       (SELECT count(pg_notify($16, $17))
        FROM (SELECT FROM changed WHERE action = 1 UNION ALL SELECT FROM notices LIMIT 1) AS due
       ) AS woken;

-- Pause ---------------------------------------------------------------------------------------

-- name: pause
-- `sink` is redacted; `sink_fingerprint` tells whether the configured URL changed since.
INSERT INTO paused (subscription, sink, sink_fingerprint, reason, paused_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (subscription) DO UPDATE
SET sink = excluded.sink, sink_fingerprint = excluded.sink_fingerprint, reason = excluded.reason,
    paused_at = excluded.paused_at;

-- name: resume
DELETE FROM paused WHERE subscription = $1;

-- name: paused
SELECT subscription, sink, sink_fingerprint, reason FROM paused ORDER BY subscription;

-- Circuit breakers (CONTRACT 5) --------------------------------------------------------------

-- name: breakers
SELECT subscription, until, cooldown, error FROM breakers ORDER BY subscription;

-- name: breaker_open
-- $1 subscription, $2 until, $3 cooldown, $4 error, $5 now
INSERT INTO breakers (subscription, until, cooldown, error, opened_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (subscription) DO UPDATE
SET until = excluded.until, cooldown = excluded.cooldown, error = excluded.error;

-- name: breaker_claim
-- One row changed unless another replica's claim (or a newer opening) put `until` ahead of $5.
INSERT INTO breakers (subscription, until, cooldown, error, opened_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (subscription) DO UPDATE
SET until = excluded.until
WHERE breakers.until <= $5;

-- name: breaker_close
DELETE FROM breakers WHERE subscription = $1;

-- Rate limits (CONTRACT 5) --------------------------------------------------------------------

-- name: rate_take
-- A token bucket taken from atomically (the row lock orders concurrent replicas): refill by
-- the time elapsed at $2 tokens/s up to $3, then grant up to $4 whole tokens.
-- $1 subscription, $2 rate, $3 capacity, $4 wanted, $5 now
INSERT INTO rate_limits AS r (subscription, tokens, at, granted)
VALUES ($1, $3 - LEAST($4, FLOOR($3)), $5, LEAST($4, FLOOR($3)))
ON CONFLICT (subscription) DO UPDATE
SET granted = LEAST($4, FLOOR(LEAST($3, r.tokens + GREATEST($5 - r.at, 0) * $2))),
    tokens = LEAST($3, r.tokens + GREATEST($5 - r.at, 0) * $2)
             - LEAST($4, FLOOR(LEAST($3, r.tokens + GREATEST($5 - r.at, 0) * $2))),
    at = GREATEST(r.at, $5)
RETURNING granted;

-- Dead letters --------------------------------------------------------------------------------

-- name: dead_letters_all
SELECT d.id, d.subscription, d.dl_reason, d.dl_status, COALESCE(d.dl_attempts, d.attempts),
       d.updated_at, e.attrs, e.data, e.kind, e.producer
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.state = 2 AND d.kind = 0
ORDER BY d.updated_at DESC, d.id DESC
LIMIT $1;

-- name: dead_letters_of
SELECT d.id, d.subscription, d.dl_reason, d.dl_status, COALESCE(d.dl_attempts, d.attempts),
       d.updated_at, e.attrs, e.data, e.kind, e.producer
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.state = 2 AND d.kind = 0 AND d.subscription = $2
ORDER BY d.updated_at DESC, d.id DESC
LIMIT $1;

-- name: redeliver
-- A fresh start: due now ($2), with the whole retry budget again; $3, $4 NOTIFY.
WITH changed AS (
    UPDATE deliveries
    SET state = 0, due_at = $2, lease = NULL, attempts = 0, finished_at = NULL, updated_at = $2,
        dl_reason = NULL, dl_status = NULL, dl_attempts = NULL, dl_sink = NULL,
        batch = NULL  -- batch delivery: a redelivered row joins a new batch
    WHERE id = $1 AND state = 2 AND kind = 0
    RETURNING 1
)
SELECT (SELECT count(*) FROM changed) AS changed,
       (SELECT count(pg_notify($3, $4)) FROM (SELECT FROM changed LIMIT 1) AS due) AS woken;

-- Purge ---------------------------------------------------------------------------------------

-- name: purge_lock
-- One replica purges at a time; the others skip their turn.
SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()));

-- name: purge_chunk
-- $1 cutoff, $2 the last seq scanned, $3 chunk size. The next events after $2 go when they are
-- old and none of their deliveries is pending or ended after the cutoff. Returns how many went,
-- the last seq scanned, how many were scanned and whether any was old.
WITH scanned AS (
    SELECT seq, received_at < $1 AS old FROM events WHERE seq > $2 ORDER BY seq LIMIT $3
),
doomed AS (
    SELECT s.seq FROM scanned AS s
    WHERE s.old AND NOT EXISTS (
        SELECT 1 FROM deliveries AS d
        WHERE d.event_seq = s.seq AND (d.state = 0 OR d.finished_at >= $1))
),
gone_attempts AS (
    DELETE FROM attempts AS a USING deliveries AS d, doomed
    WHERE a.delivery_id = d.id AND d.event_seq = doomed.seq
),
gone_deliveries AS (
    DELETE FROM deliveries AS d USING doomed WHERE d.event_seq = doomed.seq
),
gone AS (
    DELETE FROM events AS e USING doomed WHERE e.seq = doomed.seq RETURNING e.seq
)
SELECT (SELECT count(*) FROM gone) AS removed,
       (SELECT max(seq) FROM scanned) AS last,
       (SELECT count(*) FROM scanned) AS scanned,
       (SELECT coalesce(bool_or(old), false) FROM scanned) AS any_old;

-- name: purge_dedupe
-- The outer test is checked again on a key claimed meanwhile, which then stays.
DELETE FROM dedupe
WHERE (source, id) IN (SELECT source, id FROM dedupe WHERE seen_at <= $1 LIMIT $2)
  AND seen_at <= $1;

-- Identity ------------------------------------------------------------------------------------

-- name: identity
SELECT value FROM meta WHERE key = 'identity';
