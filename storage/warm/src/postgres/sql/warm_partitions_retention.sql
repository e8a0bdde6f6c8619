-- Forgets partitions of days wholly below the retention cutoff (their rows are gone, and
-- later rows there are not stored). Cold pointers stay. $1 first day not wholly below it.
DELETE FROM strata_warm_partitions WHERE day < $1
