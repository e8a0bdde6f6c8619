-- Adds a batch's per-bucket cells to a rollup ({rollup}), plain PostgreSQL only.
-- Arrays, one element per (tenant, stream, bucket): $1 tenant, $2 stream, $3 bucket,
-- $4 count, $5 value count, $6 sum, $7 min, $8 max.
INSERT INTO {rollup} AS r (tenant, stream, bucket, n, n_value, sum_value, min_value, max_value)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int8[], $5::int8[],
                     $6::float8[], $7::float8[], $8::float8[])
ON CONFLICT (tenant, bucket, stream) DO UPDATE SET
    n = r.n + EXCLUDED.n,
    n_value = r.n_value + EXCLUDED.n_value,
    sum_value = COALESCE(r.sum_value, 0) + COALESCE(EXCLUDED.sum_value, 0),
    min_value = LEAST(r.min_value, EXCLUDED.min_value),
    max_value = GREATEST(r.max_value, EXCLUDED.max_value)
