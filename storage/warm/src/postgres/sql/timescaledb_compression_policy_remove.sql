-- Removes the compression policy, so timescaledb_compression_policy_add.sql can set the
-- configured age (a policy cannot be altered in place).
SELECT remove_compression_policy('events', if_exists => true)
