-- Applies the configured chunk interval to new chunks (a setting, not schema: re-applied after
-- every migrate). $1 the interval in microseconds.
SELECT set_chunk_time_interval('events', $1::int8 * INTERVAL '1 microsecond')
