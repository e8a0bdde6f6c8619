-- Serialises flushes of one node and reads how far it got. The shared lock on the state row
-- keeps the retention cutoff still until the batch commits (retention updates that row
-- first, so it waits for running flushes and later flushes see the new cutoff).
-- $1 node.
SELECT n.committed_upto, s.retention_cutoff
FROM strata_flush_nodes n, strata_warm_state s
WHERE n.node = $1 AND s.id = 1
FOR UPDATE OF n FOR SHARE OF s
