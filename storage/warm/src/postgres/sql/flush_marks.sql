-- Every node's highest committed sequence number; one statement, so one snapshot.
SELECT node, committed_upto FROM strata_flush_nodes
