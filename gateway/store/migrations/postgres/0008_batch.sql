-- Migration 8 of the PostgreSQL store, batch delivery (CONTRACT 5, `mode: batch`): the group a
-- SINK row is sent with. Set on the group's first lease (the smallest row id of the group), kept
-- across retries, restarts and replicas, so that the rows of a batch are always leased together
-- and its webhook-id stays the same; NULL: not grouped yet.
ALTER TABLE deliveries ADD COLUMN batch BIGINT;

CREATE INDEX deliveries_batch ON deliveries (subscription, batch) WHERE state = 0 AND batch IS NOT NULL;
