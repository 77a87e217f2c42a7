-- Named queries of the migration runner on SQLite (gateway.store.migrator).

-- name: begin
BEGIN IMMEDIATE;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;

-- name: version_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at REAL NOT NULL
);

-- name: version
SELECT COALESCE(MAX(version), 0) FROM schema_migrations;

-- name: record
INSERT INTO schema_migrations (version, name, applied_at) VALUES (:version, :name, :now);
