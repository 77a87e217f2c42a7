-- Migration 2: reserved (a no-op here; replaced by the migration that takes this number).
UPDATE meta SET value = '2' WHERE key = 'schema_version';
