-- Materialises a continuous aggregate over a window aligned to its bucket. Runs outside any
-- transaction block (TimescaleDB commits inside it). $1 the aggregate, $2 from, $3 to.
CALL refresh_continuous_aggregate($1::text::regclass, $2::timestamptz, $3::timestamptz)
