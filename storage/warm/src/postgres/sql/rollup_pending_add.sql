-- Notes a batch's event-time ranges for a continuous-aggregate refresh, in the batch's
-- transaction. $1 from (timestamptz[]), $2 to (timestamptz[]), one element per range.
INSERT INTO strata_rollup_pending (from_ts, to_ts)
SELECT * FROM unnest($1::timestamptz[], $2::timestamptz[])
