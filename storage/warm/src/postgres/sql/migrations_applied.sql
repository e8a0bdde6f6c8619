-- Applied migrations in order, with the layout each was applied in.
SELECT version, mode FROM strata_migrations ORDER BY version
