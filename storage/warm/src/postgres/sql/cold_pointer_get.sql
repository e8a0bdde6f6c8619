-- The partition's live pointer, locked for the compare-and-set. Runs as its own statement
-- after cold_lock.sql: under READ COMMITTED each statement takes a new snapshot, so this one
-- sees every commit the lock waited for (a statement that waited inside would read an older
-- snapshot and could miss a pointer inserted meanwhile).
-- $1 tenant, $2 stream, $3 day.
SELECT version
FROM cold_partitions
WHERE tenant = $1 AND day = $3 AND stream = $2
FOR UPDATE
