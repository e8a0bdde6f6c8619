-- What decides whether rollups may answer, read in the aggregate's snapshot.
-- $1 watermark node, $2 from, $3 to. The noted ranges overlapping [from, to) (TimescaleDB
-- only; never more than 17, enough to tell "too many" apart) are read raw.
SELECT COALESCE((SELECT committed_upto FROM strata_flush_nodes WHERE node = $1), 0) AS committed_upto,
       (SELECT retention_cutoff FROM strata_warm_state WHERE id = 1) AS retention_cutoff,
       ARRAY(SELECT p.from_ts FROM strata_rollup_pending p
             WHERE p.from_ts < $3 AND p.to_ts > $2 ORDER BY p.id LIMIT 17) AS pending_from,
       ARRAY(SELECT p.to_ts FROM strata_rollup_pending p
             WHERE p.from_ts < $3 AND p.to_ts > $2 ORDER BY p.id LIMIT 17) AS pending_to
