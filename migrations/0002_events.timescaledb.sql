-- The events table with TimescaleDB: a hypertable chunked by day (Strata applies the
-- configured chunk interval after migrating), compressed by (tenant, stream) ordered by ts
-- once chunks are a week old (also reconfigured from settings). Late rows may still land in
-- compressed chunks, and retention may delete from them.
--
-- No unique index: exactly-once comes from the flush ledger, and a hypertable's unique
-- indexes would have to include ts anyway. The compression options and
-- add_compression_policy are spelled the way every release from 2.13 (by_range) to 2.28
-- accepts; 2.18 renamed them (columnstore) but kept these names.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE events (
    tenant text NOT NULL,
    stream text NOT NULL,
    key text NOT NULL,
    id text NOT NULL,
    ts timestamptz NOT NULL,
    value double precision,
    attrs jsonb NOT NULL DEFAULT '{}'::jsonb,
    payload text,
    ingest_ts timestamptz NOT NULL,
    node text NOT NULL,
    seq bigint NOT NULL
);

SELECT create_hypertable('events', by_range('ts', INTERVAL '1 day'));

CREATE INDEX events_tenant_stream_ts ON events (tenant, stream, ts);
CREATE INDEX events_tenant_id ON events (tenant, id);

ALTER TABLE events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'tenant, stream',
    timescaledb.compress_orderby = 'ts'
);
SELECT add_compression_policy('events', compress_after => INTERVAL '7 days');
