-- Named queries of the migration runner on PostgreSQL (gateway.store.migrator).

-- name: schema
-- The schema the tables live in: the first existing schema of the search_path.
SELECT current_schema();

-- name: lock
-- Held until the end of the transaction: replicas starting together take turns, so each
-- migration runs exactly once. $1 is the lock class; the schema keeps deployments apart.
SELECT pg_advisory_xact_lock($1, hashtext(current_schema()));

-- name: version_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
);

-- name: version
SELECT COALESCE(MAX(version), 0) FROM schema_migrations;

-- name: record
INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3);
