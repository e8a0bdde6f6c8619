-- Per-minute and per-hour rollups on plain PostgreSQL. Strata updates them in the same
-- transaction as each flushed batch, so they are exactly once together with the ledger.
-- Same names and columns as the TimescaleDB continuous aggregates.
CREATE TABLE events_1m (
    tenant text NOT NULL,
    stream text NOT NULL,
    bucket timestamptz NOT NULL,
    n bigint NOT NULL,
    n_value bigint NOT NULL,
    sum_value double precision,
    min_value double precision,
    max_value double precision,
    PRIMARY KEY (tenant, bucket, stream)
);

CREATE TABLE events_1h (
    tenant text NOT NULL,
    stream text NOT NULL,
    bucket timestamptz NOT NULL,
    n bigint NOT NULL,
    n_value bigint NOT NULL,
    sum_value double precision,
    min_value double precision,
    max_value double precision,
    PRIMARY KEY (tenant, bucket, stream)
);
