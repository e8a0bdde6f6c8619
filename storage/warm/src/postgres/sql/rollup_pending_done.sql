-- Forgets noted ranges after their refresh. $1 ids (int8[]).
DELETE FROM strata_rollup_pending WHERE id = ANY($1)
