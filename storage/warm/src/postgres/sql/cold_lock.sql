-- Serialises a cold commit with the flushes into its day and with other cold commits of that
-- day (see register_partitions.sql); held until the commit's transaction ends.
-- $1 lock class (int4), $2 the day's lock slot (int4).
SELECT pg_advisory_xact_lock($1::int4, $2::int4)
