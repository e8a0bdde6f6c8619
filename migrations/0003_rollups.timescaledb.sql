-- Per-minute and per-hour continuous aggregates. Real-time aggregation is on
-- (materialized_only = false) so rows above the materialisation watermark are included.
-- Rows a flush adds below the watermark are covered by strata_rollup_pending until Strata
-- refreshes their range. Bucket boundaries of one minute and one hour are the same whether
-- computed by time_bucket here or by date_bin from the epoch in Strata's queries.
CREATE MATERIALIZED VIEW events_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT tenant,
       stream,
       time_bucket(INTERVAL '1 minute', ts) AS bucket,
       count(*) AS n,
       count(value) AS n_value,
       sum(value) AS sum_value,
       min(value) AS min_value,
       max(value) AS max_value
FROM events
GROUP BY tenant, stream, time_bucket(INTERVAL '1 minute', ts)
WITH NO DATA;

SELECT add_continuous_aggregate_policy('events_1m',
    start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute');

CREATE MATERIALIZED VIEW events_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT tenant,
       stream,
       time_bucket(INTERVAL '1 hour', ts) AS bucket,
       count(*) AS n,
       count(value) AS n_value,
       sum(value) AS sum_value,
       min(value) AS min_value,
       max(value) AS max_value
FROM events
GROUP BY tenant, stream, time_bucket(INTERVAL '1 hour', ts)
WITH NO DATA;

SELECT add_continuous_aggregate_policy('events_1h',
    start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');
