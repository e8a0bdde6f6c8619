-- Releases migrations_lock.sql, so a reused connection does not keep it. $1 the lock key.
SELECT pg_advisory_unlock($1)
