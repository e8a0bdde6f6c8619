-- What decides whether rollups may answer, read in the aggregate's snapshot.
-- $1 watermark node, $2 from, $3 to.
SELECT COALESCE((SELECT committed_upto FROM strata_flush_nodes WHERE node = $1), 0) AS committed_upto,
       (SELECT retention_cutoff FROM strata_warm_state WHERE id = 1) AS retention_cutoff,
       EXISTS (SELECT 1 FROM strata_rollup_pending WHERE from_ts < $3 AND to_ts > $2) AS pending
