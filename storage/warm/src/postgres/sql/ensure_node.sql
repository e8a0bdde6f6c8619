-- $1 node.
INSERT INTO strata_flush_nodes (node) VALUES ($1) ON CONFLICT (node) DO NOTHING
