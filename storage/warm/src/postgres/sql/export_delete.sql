-- Drops exactly the exported rows: the partition's rows at or below the export marks.
-- $1 tenant, $2 stream, $3 day start, $4 day end, $5 nodes (text[]), $6 their marks (int8[]).
DELETE FROM events e
USING unnest($5::text[], $6::int8[]) AS m (node, upto)
WHERE e.tenant = $1 AND e.stream = $2
  AND e.ts >= $3 AND e.ts < $4
  AND e.node = m.node AND e.seq <= m.upto
