-- Migration 3 of the PostgreSQL store: reserved (no change), so that migration 4 follows in order.

SELECT 1;
