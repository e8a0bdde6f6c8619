-- Records a committed batch in the ledger and raises the node's mark, in the batch's
-- transaction. $1 node, $2 first seq written, $3 last seq, $4 rows.
WITH ledger AS (
    INSERT INTO strata_flush_ledger (node, first_seq, last_seq, row_count)
    VALUES ($1, $2, $3, $4)
)
UPDATE strata_flush_nodes SET committed_upto = $3 WHERE node = $1
