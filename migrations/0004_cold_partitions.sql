-- The warm side of the warm -> cold hand-off. Shared by both layouts.
--
-- A partition is a tenant's stream on one UTC day; `day` counts days since 1970-01-01
-- (negative before it), the way the cold archive numbers them.

-- The live cold manifest version of each exported partition. Only the cold commit changes a
-- row, compare-and-set on `version`, in the same transaction that deletes the exported rows,
-- so a reader that sees a pointer never sees the rows it replaced. Retention leaves pointers
-- alone: the archive keeps a partition after warm has dropped its day.
CREATE TABLE cold_partitions (
    tenant text NOT NULL,
    stream text NOT NULL,
    day bigint NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    manifest_sha256 text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, day, stream)
);

-- Partitions that hold warm rows, so finding the ones due for export reads this small table
-- (oldest day first, by its key) instead of the events. A flush adds its batch's partitions
-- in the batch's transaction. The cold commit removes a partition it emptied, under a per-day
-- advisory lock that flushes take shared, so an entry never goes while a concurrent flush
-- adds rows to its partition; retention removes the days below its cutoff, where flushes
-- store nothing.
CREATE TABLE strata_warm_partitions (
    day bigint NOT NULL,
    tenant text NOT NULL,
    stream text NOT NULL,
    PRIMARY KEY (day, tenant, stream)
);

-- Partitions of rows stored before this migration.
INSERT INTO strata_warm_partitions (day, tenant, stream)
SELECT DISTINCT floor(extract(epoch FROM ts) / 86400)::bigint, tenant, stream
FROM events;
