-- TimescaleDB: drops the hypertable's chunks wholly below the retention cutoff. $1 cutoff.
SELECT drop_chunks('events', older_than => $1::timestamptz)
