SELECT id, from_ts, to_ts FROM strata_rollup_pending ORDER BY id LIMIT 64
