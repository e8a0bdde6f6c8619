-- Live cold pointers of one tenant (or all when $1 is NULL) whose day lies in [$2, $3]
-- (days since the epoch), in (tenant, day, stream) order so repeated reads compare equal.
SELECT tenant, stream, day, version, manifest_sha256
FROM cold_partitions
WHERE ($1::text IS NULL OR tenant = $1::text)
  AND day >= $2 AND day <= $3
ORDER BY tenant, day, stream
