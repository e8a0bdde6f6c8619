-- Per-minute and per-hour continuous aggregates, with the same names and columns as the plain
-- layout's rollup tables. The hourly one is built on the minute one (a hierarchical
-- continuous aggregate), so refreshing an hour re-reads at most sixty minute rows per
-- (tenant, stream) instead of every event of the hour.
--
-- Real-time aggregation is on (materialized_only = false): buckets above an aggregate's
-- materialisation watermark are computed from the rows at query time. Rows a flush adds
-- below the watermark are only there after a refresh; every flush therefore notes its range
-- in strata_rollup_pending, queries read raw rows wherever a noted range overlaps, and Strata
-- refreshes the noted ranges (minute aggregate first, then the hourly one) and forgets them.
-- The policies below are a backstop for changes Strata did not note.
--
-- One-minute and one-hour time_bucket boundaries equal date_bin boundaries from the epoch,
-- so Strata's date_bin queries read the aggregates exactly like the plain rollup tables.
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
       time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       sum(n)::bigint AS n,
       sum(n_value)::bigint AS n_value,
       sum(sum_value) AS sum_value,
       min(min_value) AS min_value,
       max(max_value) AS max_value
FROM events_1m
GROUP BY tenant, stream, time_bucket(INTERVAL '1 hour', bucket)
WITH NO DATA;

SELECT add_continuous_aggregate_policy('events_1h',
    start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');
