-- Raises the retention cutoff first, so the row lock orders retention against flushes.
-- $1 cutoff.
UPDATE strata_warm_state
SET retention_cutoff = GREATEST(COALESCE(retention_cutoff, $1), $1)
WHERE id = 1
RETURNING retention_cutoff
