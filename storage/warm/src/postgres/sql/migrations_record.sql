-- Records an applied migration, in its transaction. $1 version, $2 name, $3 layout.
INSERT INTO strata_migrations (version, name, mode) VALUES ($1, $2, $3)
