-- Which of these ids of one tenant warm holds, in any state (for deduplication on ingest).
-- $1 tenant, $2 ids (text[]). Served by the (tenant, id) index.
SELECT id, seq
FROM events
WHERE tenant = $1 AND id = ANY($2)
