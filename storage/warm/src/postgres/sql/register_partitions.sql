-- Records a batch's partitions as export candidates, in the batch's transaction. First takes
-- the per-day advisory locks of the batch's days shared (the cold commit takes its day's lock
-- exclusively, see cold_lock.sql), so a commit never removes an entry or rebuilds rollups
-- while this batch adds rows to that day; the locks are held until the batch commits. The
-- CTE holds a volatile function, so it is never inlined, and the insert cannot produce a row
-- before it has run.
-- $1 lock class (int4), $2 lock slots of the batch's days (int4[]); one element per
-- partition: $3 tenants, $4 streams, $5 days since the epoch (int8[]).
WITH locked AS (
    SELECT count(pg_advisory_xact_lock_shared($1::int4, slot)) AS n
    FROM (SELECT DISTINCT slot FROM unnest($2::int4[]) AS s (slot) ORDER BY slot) AS slots
)
INSERT INTO strata_warm_partitions (day, tenant, stream)
SELECT DISTINCT p.day, p.tenant, p.stream
FROM locked, unnest($3::text[], $4::text[], $5::int8[]) AS p (tenant, stream, day)
ON CONFLICT DO NOTHING
