-- $1 id.
DELETE FROM strata_rollup_pending WHERE id = $1
