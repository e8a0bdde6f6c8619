-- Exactly-once hand-off from each node's hot tier, and the warm tier's own state.
-- Shared by both layouts (native partitions and TimescaleDB).

-- Highest sequence number of each node committed to warm. A flush locks its node's row,
-- skips rows at or below the mark and raises it in the same transaction as the rows.
CREATE TABLE strata_flush_nodes (
    node text PRIMARY KEY,
    committed_upto bigint NOT NULL DEFAULT 0
);

-- One row per committed flush batch, written in the batch's transaction.
CREATE TABLE strata_flush_ledger (
    node text NOT NULL,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    row_count bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, first_seq)
);

-- Rows before retention_cutoff have been dropped; rollup buckets below it are never read.
CREATE TABLE strata_warm_state (
    id int PRIMARY KEY CHECK (id = 1),
    retention_cutoff timestamptz
);
INSERT INTO strata_warm_state (id, retention_cutoff) VALUES (1, NULL);

-- Event-time ranges (whole minutes) whose continuous aggregates may miss rows a flush added
-- below the aggregates' materialisation watermark (TimescaleDB only). Queries read raw rows
-- wherever one overlaps, until Strata has refreshed the range and deleted its row.
CREATE TABLE strata_rollup_pending (
    id bigserial PRIMARY KEY,
    from_ts timestamptz NOT NULL,
    to_ts timestamptz NOT NULL
);
