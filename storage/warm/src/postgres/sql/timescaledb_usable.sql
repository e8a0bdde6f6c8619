-- Whether the extension can be used here: installed in this database already, or offered by
-- the server and preloaded (a listed but not preloaded extension cannot be created).
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
    OR (EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
        AND COALESCE(current_setting('shared_preload_libraries', true), '') LIKE '%timescaledb%')
