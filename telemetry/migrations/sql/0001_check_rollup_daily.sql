-- Daily rollups of check_result, per monitor and day (UTC): same columns and
-- semantics as check_rollup_hourly, maintained by the same fold (rollups_fold), so a
-- year-long window reads 365 rows per monitor. Partitioned by month (p<YYYYMM>),
-- dropped after TELEMETRY_DAILY_RETENTION_DAYS.
CREATE TABLE check_rollup_daily (
    -- monitors_monitor.id; first in the primary key so that one monitor's rollups over
    -- a window are one contiguous range (InnoDB clusters rows by primary key).
    monitor_id BIGINT NOT NULL,
    -- The day (UTC); the partition column.
    day DATE NOT NULL,
    -- All checks stored in this period (ok and failed): uptime = 1 - failures / checks.
    checks INT UNSIGNED NOT NULL,
    -- Checks with ok = 0.
    failures INT UNSIGNED NOT NULL,
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
    le_10ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_25ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_50ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_75ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_100ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_150ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_200ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_300ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_500ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_750ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_1000ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_1500ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_2000ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_3000ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_5000ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_10000ms INT UNSIGNED NOT NULL DEFAULT 0,
    le_30000ms INT UNSIGNED NOT NULL DEFAULT 0,
    gt_30000ms INT UNSIGNED NOT NULL DEFAULT 0,
    -- check_rollup_daily_pk: ingest's ON DUPLICATE KEY target (one row per monitor and period) and
    -- reporting's per-monitor window query (WHERE monitor_id = %s AND day >= %s AND
    -- day < %s): a range scan in key order, pruned to the months of the window.
    -- Includes the partition column, as every unique key of a partitioned table must.
    PRIMARY KEY (monitor_id, day)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
PARTITION BY RANGE COLUMNS (day) (
    PARTITION pmax VALUES LESS THAN (MAXVALUE)
);
