-- The row with this tenant and id that the watermark leaves to warm.
-- $1 tenant, $2 id, $3 watermark node, $4 its released_upto.
SELECT stream, key, id, ts, value, attrs, payload, ingest_ts, seq, node
FROM events
WHERE tenant = $1 AND id = $2
  AND (node <> $3 OR seq <= $4)
ORDER BY ts, seq, node
LIMIT 1
