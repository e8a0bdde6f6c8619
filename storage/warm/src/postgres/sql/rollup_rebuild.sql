-- Recomputes a partition's rollup ({rollup}) cells from its remaining rows (plain PostgreSQL
-- only), after rollup_rebuild_clear.sql. $1 tenant, $2 stream, $3 day start, $4 day end,
-- $5 the rollup's width in microseconds.
INSERT INTO {rollup} (tenant, stream, bucket, n, n_value, sum_value, min_value, max_value)
SELECT tenant,
       stream,
       date_bin($5::int8 * INTERVAL '1 microsecond', ts, TIMESTAMPTZ 'epoch'),
       count(*),
       count(value),
       sum(value),
       min(value),
       max(value)
FROM events
WHERE tenant = $1 AND stream = $2 AND ts >= $3 AND ts < $4
GROUP BY 1, 2, 3
