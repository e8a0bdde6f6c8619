-- Removes a partition's cells from a rollup ({rollup}) before rollup_rebuild.sql recomputes
-- them from the rows that stay (plain PostgreSQL only; min and max cannot be subtracted).
-- $1 tenant, $2 stream, $3 day start, $4 day end.
DELETE FROM {rollup}
WHERE tenant = $1 AND bucket >= $3 AND bucket < $4 AND stream = $2
