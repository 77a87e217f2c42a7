-- Migration 3 of the SQLite store: reserved (no change), so that migration 4 follows in order.

UPDATE meta SET value = '3' WHERE key = 'schema_version';
