-- Migration 6 of the PostgreSQL store: what each replica reports of itself (the config
-- generation it runs, when it was loaded, its last refused reload) every few seconds, so that
-- `gateway status` on any replica shows every replica's generation and config drift is visible.

CREATE TABLE replicas (
    replica    TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    loaded_at  DOUBLE PRECISION NOT NULL,
    last_error TEXT,
    seen_at    DOUBLE PRECISION NOT NULL
);
