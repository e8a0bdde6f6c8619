COPY events (tenant, stream, key, id, ts, value, attrs, payload, ingest_ts, node, seq)
FROM STDIN (FORMAT binary)
