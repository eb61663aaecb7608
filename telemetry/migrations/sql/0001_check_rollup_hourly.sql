-- Hourly rollups of check_result, per monitor and hour (UTC).
--
-- Maintained incrementally (since migration 0004) by telemetry.rollups.rollups_fold:
-- INSERT ... ON DUPLICATE KEY UPDATE adds the deltas ingest appended to
-- check_rollup_pending with the raw rows they describe (a replayed result inserts
-- nothing and appends nothing). Never recomputed by scanning check_result. Read by reporting/ for windows longer than a
-- few hours (uptime, mean latency, percentiles). Partitioned by month, p<YYYYMM>
-- holding [month, next month), dropped by telemetry.partitions after
-- TELEMETRY_HOURLY_RETENTION_DAYS.
CREATE TABLE check_rollup_hourly (
    -- monitors_monitor.id; first in the primary key so that one monitor's rollups over
    -- a window are one contiguous range (InnoDB clusters rows by primary key).
    monitor_id BIGINT NOT NULL,
    -- Start of the hour (UTC), minutes and seconds zero; the partition column.
    hour_start DATETIME NOT NULL,
    -- All checks stored in this period (ok and failed): uptime = 1 - failures / checks.
    checks MEDIUMINT UNSIGNED NOT NULL,
    -- Checks with ok = 0.
    failures MEDIUMINT UNSIGNED NOT NULL,
    -- Latency (check_result.duration_ms) of the SUCCESSFUL checks only, so that a
    -- timeout does not pass for a slow answer: mean = latency_sum_ms / (checks - failures).
    -- min/max are NULL while the period has no successful check.
    latency_sum_ms BIGINT UNSIGNED NOT NULL,
    latency_min_ms INT UNSIGNED NULL,
    latency_max_ms INT UNSIGNED NULL,
    -- Fixed-bucket latency histogram of the successful checks (they sum to
    -- checks - failures). Each column counts durations d with previous bound < d <= bound
    -- (le_10ms: d <= 10; gt_30000ms: d > 30000); not cumulative. Buckets add up across
    -- periods and monitors, so p50/p95/p99 of any window are a SUM per column and a walk
    -- over the cumulative counts (telemetry.histogram.percentile_ms).
    le_10ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_25ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_50ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_75ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_100ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_150ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_200ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_300ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_500ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_750ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_1000ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_1500ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_2000ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_3000ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_5000ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_10000ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    le_30000ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    gt_30000ms MEDIUMINT UNSIGNED NOT NULL DEFAULT 0,
    -- check_rollup_hourly_pk: ingest's ON DUPLICATE KEY target (one row per monitor and period) and
    -- reporting's per-monitor window query (WHERE monitor_id = %s AND hour_start >= %s AND
    -- hour_start < %s): a range scan in key order, pruned to the months of the window.
    -- Includes the partition column, as every unique key of a partitioned table must.
    PRIMARY KEY (monitor_id, hour_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
PARTITION BY RANGE COLUMNS (hour_start) (
    PARTITION pmax VALUES LESS THAN (MAXVALUE)
);
