-- Migration 10: running tallies of delivered and failed attempts per subscription (CONTRACT 6
-- `status`, gateway.store.tallies), kept by each `finish` so that counting does not scan every
-- delivery and attempt retained. One row per (subscription, replica): replicas never contend
-- for one row; readers sum them. Started from what the tables hold now.
CREATE TABLE IF NOT EXISTS tallies (
    subscription TEXT NOT NULL,
    replica      TEXT NOT NULL,
    delivered    INTEGER NOT NULL,
    failed       INTEGER NOT NULL,
    last_status  INTEGER,              -- the latest failed attempt's
    last_error   TEXT,
    last_at      REAL,
    PRIMARY KEY (subscription, replica)
);

INSERT INTO tallies (subscription, replica, delivered, failed)
SELECT subscription, '', sum(delivered), sum(failed) FROM (
    SELECT subscription, count(*) AS delivered, 0 AS failed
    FROM deliveries WHERE kind = 0 AND state = 1 GROUP BY subscription
    UNION ALL
    SELECT d.subscription, 0, count(*)
    FROM attempts AS a JOIN deliveries AS d ON d.id = a.delivery_id
    WHERE d.kind = 0 AND (a.status IS NULL OR a.status < 200 OR a.status >= 300)
    GROUP BY d.subscription
) AS found
GROUP BY subscription;

UPDATE tallies SET (last_status, last_error, last_at) = (
    SELECT a.status, a.error, a.at
    FROM attempts AS a JOIN deliveries AS d ON d.id = a.delivery_id
    WHERE d.subscription = tallies.subscription AND d.kind = 0
      AND (a.status IS NULL OR a.status < 200 OR a.status >= 300)
    ORDER BY a.at DESC LIMIT 1
)
WHERE failed > 0;

UPDATE meta SET value = '10' WHERE key = 'schema_version';
