-- Partial aggregate over raw rows: per (bucket, group) count, value count, sum, min, max.
-- $1 tenant, $2 from (incl.), $3 to (excl.), $4 bucket width in microseconds,
-- $5 watermark node, $6 its released_upto (rows of that node above it are still in hot),
-- $7 group kind (0 none, 1 key, 2 attribute), $8 grouped attribute,
-- $9 filter attribute (NULL for none), $10 filter value, {stream_filter} adds `stream = $11`.
SELECT date_bin($4::int8 * INTERVAL '1 microsecond', ts, TIMESTAMPTZ 'epoch') AS bucket,
       CASE $7::int4 WHEN 1 THEN key WHEN 2 THEN attrs ->> $8::text END AS grp,
       count(*) AS n,
       count(value) AS n_value,
       sum(value) AS sum_value,
       min(value) AS min_value,
       max(value) AS max_value
FROM events
WHERE tenant = $1
  AND ts >= $2 AND ts < $3
  AND (node <> $5 OR seq <= $6)
  AND ($9::text IS NULL OR attrs ->> $9::text = $10::text)
  {stream_filter}
GROUP BY 1, 2
