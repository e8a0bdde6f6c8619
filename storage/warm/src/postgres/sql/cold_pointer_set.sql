-- Makes a manifest version live. $1 tenant, $2 stream, $3 day, $4 version, $5 manifest sha256.
INSERT INTO cold_partitions AS c (tenant, stream, day, version, manifest_sha256)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (tenant, day, stream) DO UPDATE SET
    version = EXCLUDED.version,
    manifest_sha256 = EXCLUDED.manifest_sha256,
    updated_at = now()
