-- Plain PostgreSQL: the daily partitions of the events table (`events_pYYYYMMDD`).
SELECT c.relname
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'events'::regclass
