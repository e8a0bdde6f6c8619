-- Partial aggregate from a rollup ({rollup}: events_1m or events_1h), no grouping.
-- $1 tenant, $2 from (aligned to the rollup width), $3 to (aligned), $4 bucket width in
-- microseconds (a multiple of the rollup width), {stream_filter} adds `stream = $5`.
SELECT date_bin($4::int8 * INTERVAL '1 microsecond', bucket, TIMESTAMPTZ 'epoch') AS bucket,
       sum(n)::int8 AS n,
       sum(n_value)::int8 AS n_value,
       sum(sum_value) AS sum_value,
       min(min_value) AS min_value,
       max(max_value) AS max_value
FROM {rollup}
WHERE tenant = $1
  AND bucket >= $2 AND bucket < $3
  {stream_filter}
GROUP BY 1
