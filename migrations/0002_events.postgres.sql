-- The events table on plain PostgreSQL: native range partitions by day. Strata creates the
-- daily partitions ahead of the data and drops them after the warm retention.
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
) PARTITION BY RANGE (ts);

CREATE INDEX events_tenant_stream_ts ON events (tenant, stream, ts);
CREATE INDEX events_tenant_id ON events (tenant, id);
