-- One small row per monitor: its last 92 UTC days and last 26 hours of checks,
-- failures and latency, kept up to date by the rollup fold (telemetry/summary.py,
-- summaries_fold) in the fold's own transaction, so that the status pages and the
-- dashboard overview read one row per monitor instead of 50+ rollup rows.
--
-- The current day and hour are plain counters that a fold adds to in place (no read,
-- a few bytes written); the days and hours before them are packed rings, rewritten
-- only when a fold brings a new hour (or a late result). Not partitioned and never
-- purged by retention: one row per monitor, about 1.5 KB. Rebuilt from the rollups by
-- 'manage.py summaries_rebuild'.
CREATE TABLE monitor_rollup_summary (
    -- Read by primary key: statuspages (a page's monitors), reporting.queries
    -- (monitor_summaries, fleet_overview), badges; locked in key order by the fold.
    monitor_id BIGINT NOT NULL,
    -- The current UTC day (days since 1970-01-01) and its checks, failures and latency
    -- sum in ms of the successful checks; 0 for a row not yet folded into.
    day_index INT UNSIGNED NOT NULL DEFAULT 0,
    day_checks INT UNSIGNED NOT NULL DEFAULT 0,
    day_failures INT UNSIGNED NOT NULL DEFAULT 0,
    day_latency_ms BIGINT UNSIGNED NOT NULL DEFAULT 0,
    -- The same of the current hour (hours since 1970-01-01 00:00 UTC).
    hour_index INT UNSIGNED NOT NULL DEFAULT 0,
    hour_checks INT UNSIGNED NOT NULL DEFAULT 0,
    hour_failures INT UNSIGNED NOT NULL DEFAULT 0,
    hour_latency_ms BIGINT UNSIGNED NOT NULL DEFAULT 0,
    -- Packed little-endian uint32s: the epoch day of the ring's last slot, then per slot
    -- (oldest first) checks, failures, latency sum; the days before day_index.
    days BLOB NOT NULL,
    -- The same per hour, 26 slots: the hours before hour_index.
    hours BLOB NOT NULL,
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (monitor_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
