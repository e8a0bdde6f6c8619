-- Noted ranges wholly below the retention cutoff need no refresh: queries never read there.
-- $1 cutoff.
DELETE FROM strata_rollup_pending WHERE to_ts <= $1
