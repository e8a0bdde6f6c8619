-- Rows below the cutoff in partitions (or chunks) that straddle it. $1 cutoff.
DELETE FROM events WHERE ts < $1
