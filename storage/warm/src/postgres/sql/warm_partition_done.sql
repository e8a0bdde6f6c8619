-- Forgets a partition the cold commit emptied; one that still holds rows (flushed after the
-- export's marks) stays a candidate. Runs under the day's exclusive lock (cold_lock.sql).
-- $1 tenant, $2 stream, $3 day, $4 day start, $5 day end.
DELETE FROM strata_warm_partitions
WHERE day = $3 AND tenant = $1 AND stream = $2
  AND NOT EXISTS (
      SELECT 1 FROM events
      WHERE tenant = $1 AND stream = $2 AND ts >= $4 AND ts < $5)
