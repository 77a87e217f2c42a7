-- Migration 2: reserved (a no-op here; replaced by the migration that takes this number).
SELECT 1;
