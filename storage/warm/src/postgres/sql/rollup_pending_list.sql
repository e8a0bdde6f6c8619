-- The oldest noted ranges, to refresh. $1 how many.
SELECT id, from_ts, to_ts FROM strata_rollup_pending ORDER BY id LIMIT $1
