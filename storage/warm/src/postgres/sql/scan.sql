-- One page of a tenant's rows in (ts, seq, node) order, after a cursor.
-- $1 tenant, $2 from (incl., raised to the cursor's ts), $3 to (excl.), $4 watermark node,
-- $5 its released_upto, ($6, $7, $8) the cursor (ts, seq, node), $9 page size,
-- {stream_filter} adds `stream = $10`.
SELECT stream, key, id, ts, value, attrs, payload, ingest_ts, seq, node
FROM events
WHERE tenant = $1
  AND ts >= $2 AND ts < $3
  AND (node <> $4 OR seq <= $5)
  AND (ts, seq, node) > ($6, $7, $8)
  {stream_filter}
ORDER BY ts, seq, node
LIMIT $9
