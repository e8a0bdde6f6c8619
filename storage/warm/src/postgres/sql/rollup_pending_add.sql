-- $1 from, $2 to.
INSERT INTO strata_rollup_pending (from_ts, to_ts) VALUES ($1, $2)
