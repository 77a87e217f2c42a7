-- Migration 3: the identity of the replica holding each lease, so that a replica restarting
-- after a crash gives its own leases back at once instead of waiting for them to expire.
-- Nullable and without a default: adding it rewrites no rows.
ALTER TABLE deliveries ADD COLUMN replica TEXT;
