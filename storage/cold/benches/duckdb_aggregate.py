"""DuckDB peer for the cold benchmark: the same day-range hourly count + sum over the same
Parquet files, best of 10 runs after a warm-up, 2 threads (the machine's cores).

    python benches/duckdb_aggregate.py <archive-dir>
"""
import sys
import time

import duckdb

root = sys.argv[1]
con = duckdb.connect()
con.execute("SET threads TO 2")
sql = f"""
SELECT epoch(time_bucket(INTERVAL 1 hour, ts)) AS hour, count(*), sum(value)
FROM read_parquet('{root}/**/*.parquet', hive_partitioning=true)
WHERE tenant = 'acme'
  AND ts >= TIMESTAMPTZ '2026-11-20 00:00:00+00' AND ts < TIMESTAMPTZ '2026-11-21 00:00:00+00'
GROUP BY 1 ORDER BY 1
"""
rows = con.execute(sql).fetchall()
best = float("inf")
for _ in range(10):
    t = time.perf_counter()
    rows = con.execute(sql).fetchall()
    best = min(best, time.perf_counter() - t)
total = sum(r[1] for r in rows)
print(f"hourly count+sum over {total} rows: best {best * 1000:.1f} ms")
