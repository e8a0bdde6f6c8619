-- Whether the server offers the timescaledb extension at all.
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
