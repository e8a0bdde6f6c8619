-- Whether the database was ever migrated.
SELECT to_regclass('strata_migrations') IS NOT NULL
