-- Compresses chunks older than the configured age. $1 the age in microseconds.
SELECT add_compression_policy('events', compress_after => $1::int8 * INTERVAL '1 microsecond')
