-- $1 node.
SELECT COALESCE((SELECT committed_upto FROM strata_flush_nodes WHERE node = $1), 0)
