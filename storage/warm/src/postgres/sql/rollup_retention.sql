-- Plain PostgreSQL: a rollup's ({rollup}) cells below the retention cutoff. $1 cutoff.
DELETE FROM {rollup} WHERE bucket < $1
