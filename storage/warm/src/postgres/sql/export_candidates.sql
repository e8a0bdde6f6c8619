-- Partitions whose whole day ends at or before the export cutoff, oldest day first. Reads the
-- small partition table in key order and probes the (tenant, stream, ts) index once per entry
-- (entries outlive their rows only on a day retention cut through), never the events at large.
-- $1 first day not due (days since the epoch), $2 most partitions.
SELECT p.tenant, p.stream, p.day
FROM strata_warm_partitions p
WHERE p.day < $1
  AND EXISTS (
      SELECT 1 FROM events e
      WHERE e.tenant = p.tenant AND e.stream = p.stream
        AND e.ts >= to_timestamp(p.day * 86400) AND e.ts < to_timestamp((p.day + 1) * 86400))
ORDER BY p.day, p.tenant, p.stream
LIMIT $2
