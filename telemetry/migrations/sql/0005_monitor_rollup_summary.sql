-- One small row per monitor: its last 92 UTC days and last 26 hours of checks,
-- failures and latency, kept up to date by the rollup fold (telemetry/summary.py,
-- summaries_fold) in the fold's own transaction, so that the status pages and the
-- dashboard overview read one row per monitor instead of 50+ rollup rows.
--
-- Not partitioned and never purged by retention: one row per monitor, about 1.5 KB.
-- Rebuilt from the rollups by 'manage.py summaries_rebuild'.
CREATE TABLE monitor_rollup_summary (
    -- Read by primary key: statuspages (a page's monitors), reporting.queries
    -- (monitor_summaries, fleet_overview), badges; locked in key order by the fold.
    monitor_id BIGINT NOT NULL,
    -- Packed little-endian uint32s: the epoch day of the last slot, then per slot
    -- (oldest first) checks, failures, latency sum in ms of the successful checks.
    days BLOB NOT NULL,
    -- The same per hour: the epoch hour of the last slot, then 26 slots.
    hours BLOB NOT NULL,
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (monitor_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
