-- Migration 3: the identity of the replica holding each lease (the same column as on
-- PostgreSQL; one process owns a SQLite file, which gives back every lease at open).
ALTER TABLE deliveries ADD COLUMN replica TEXT;

UPDATE meta SET value = '3' WHERE key = 'schema_version';
