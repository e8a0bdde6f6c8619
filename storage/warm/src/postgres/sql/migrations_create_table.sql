-- Which migrations a database has applied, and in which layout.
CREATE TABLE IF NOT EXISTS strata_migrations (
    version int PRIMARY KEY,
    name text NOT NULL,
    mode text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
