-- Raw check results: one row per check, RANGE-partitioned by day on scheduled_at.
--
-- Written only by telemetry.ingest (one multi-row INSERT IGNORE per batch); read by
-- reporting/ for "one monitor over a time range" and by the admin (read-only model
-- telemetry.models.CheckResultRow). No foreign keys: MySQL/MariaDB refuse them on a
-- partitioned table, and a deleted monitor's rows simply expire with their partition.
--
-- The table is created with only the MAXVALUE partition; migration 0002 (and the
-- maintenance task, telemetry.partitions) REORGANIZEs it into daily partitions
-- p<YYYYMMDD>, each holding [day, day + 1), relative to the day it runs.
CREATE TABLE check_result (
    -- monitors_monitor.id (BigAutoField); first in the primary key so that one
    -- monitor's results are stored together (InnoDB clusters rows by primary key):
    -- reporting's per-monitor time-range query reads a contiguous range per partition.
    monitor_id BIGINT NOT NULL,
    -- The slot the dispatcher handed out (UTC, ms). With monitor_id it identifies the
    -- check: re-inserting the same result is a duplicate key, ignored (idempotent
    -- ingest). Also the partition column and the time axis of every report.
    scheduled_at DATETIME(3) NOT NULL,
    -- When the probe actually started (UTC, ms); "checked_at" in the issue. Lateness =
    -- started_at - scheduled_at (the scheduler's benchmark reads it).
    started_at DATETIME(3) NOT NULL,
    -- Total check duration (ms); the latency that rollups aggregate.
    duration_ms INT UNSIGNED NOT NULL,
    -- 1 = the check passed (status, keyword, TLS all fine); uptime = ok / all.
    ok TINYINT(1) NOT NULL,
    -- HTTP status code, NULL for TCP/TLS checks or when no response arrived.
    status_code SMALLINT UNSIGNED NULL,
    -- telemetry.records.FailureKind value, NULL when ok.
    failure VARCHAR(16) NULL,
    -- Short error message (at most 200 characters), '' when ok.
    error VARCHAR(200) NOT NULL DEFAULT '',
    -- Phase timings (ms), NULL when the phase did not happen (no DNS for an IP
    -- target, no TLS for plain HTTP, no response at all).
    dns_ms INT UNSIGNED NULL,
    connect_ms INT UNSIGNED NULL,
    tls_ms INT UNSIGNED NULL,
    ttfb_ms INT UNSIGNED NULL,
    -- Certificate expiry seen by this check (TLS monitors and https URLs).
    tls_expires_at DATETIME(3) NULL,
    -- check_result_pk: (1) the idempotency key of ingest's INSERT IGNORE; (2) the
    -- per-monitor time-range query of reporting/ (WHERE monitor_id = %s AND
    -- scheduled_at >= %s AND scheduled_at < %s ORDER BY scheduled_at): a range scan
    -- in key order, pruned to the partitions of the range, no filesort. It includes
    -- the partition column, as every unique key of a partitioned table must.
    PRIMARY KEY (monitor_id, scheduled_at)
    -- No secondary index: every query we run names a monitor; cross-monitor scans are
    -- served by the rollup tables, and each index would cost a write per result.
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
PARTITION BY RANGE COLUMNS (scheduled_at) (
    PARTITION pmax VALUES LESS THAN (MAXVALUE)
);
