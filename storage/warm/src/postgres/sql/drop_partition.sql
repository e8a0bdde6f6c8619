-- Plain PostgreSQL: drops one daily partition wholly below the retention cutoff. {name} was
-- read from the catalog and matched `events_pYYYYMMDD` (never from input).
DROP TABLE {name}
