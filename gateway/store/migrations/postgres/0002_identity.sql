-- Migration 2 of the PostgreSQL store: a random identity of this database, made once and shared
-- by every replica. Delivery row ids repeat across databases (a reset, another deployment), so
-- the webhook-id a subscriber deduplicates on combines this identity with the row id (Standard
-- Webhooks: the id is unique per message and the same on every retry of it).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

INSERT INTO meta (key, value)
VALUES ('identity', substr(md5(random()::text || clock_timestamp()::text), 1, 16));
