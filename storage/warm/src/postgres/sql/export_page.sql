-- One page of a partition's rows at or below the export marks, in (ts, seq, node) order after
-- a cursor; rows of nodes without a mark are left out.
-- $1 tenant, $2 stream, $3 from (day start, raised to the cursor's ts), $4 to (day end),
-- $5 nodes (text[]), $6 their marks (int8[]), ($7, $8, $9) the cursor (ts, seq, node),
-- $10 page size.
SELECT e.stream, e.key, e.id, e.ts, e.value, e.attrs, e.payload, e.ingest_ts, e.seq, e.node
FROM events e
JOIN unnest($5::text[], $6::int8[]) AS m (node, upto) ON e.node = m.node
WHERE e.tenant = $1 AND e.stream = $2
  AND e.ts >= $3 AND e.ts < $4
  AND e.seq <= m.upto
  AND (e.ts, e.seq, e.node) > ($7, $8, $9)
ORDER BY e.ts, e.seq, e.node
LIMIT $10
