-- Migration 2 of the SQLite store: a random identity of this database, made once. Delivery row
-- ids repeat across databases (a reset, another deployment), so the webhook-id a subscriber
-- deduplicates on combines this identity with the row id (Standard Webhooks: the id is unique
-- per message and the same on every retry of it).

INSERT OR IGNORE INTO meta (key, value) VALUES ('identity', lower(hex(randomblob(8))));

UPDATE meta SET value = '2' WHERE key = 'schema_version';
