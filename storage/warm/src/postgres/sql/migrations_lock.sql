-- Serialises migrations of one database across processes (a session-level lock, released
-- by migrations_unlock.sql). $1 the lock key.
SELECT pg_advisory_lock($1)
