-- Rollup deltas that ingest appended and telemetry.rollups.rollups_fold has not yet
-- added to check_rollup_hourly / check_rollup_daily.
--
-- One row per ingested batch, written in the batch's own transaction (so the delta is
-- committed exactly when its raw rows are), deleted by the fold in the transaction
-- that adds it to the rollups. Short-lived rows: not partitioned, no retention.
CREATE TABLE check_rollup_pending (
    -- Append order; the fold takes the oldest first (ORDER BY id ... FOR UPDATE SKIP
    -- LOCKED uses this primary key).
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    -- When the batch was stored: the age of the oldest row is the rollups' lag.
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    -- Results of the batch that this delta covers (rows actually inserted).
    results INT UNSIGNED NOT NULL,
    -- JSON list of the batch's checks, [monitor_id, hour (epoch seconds, UTC),
    -- latency ms or -1 for a failure] (format and history: telemetry/rollups.py).
    deltas MEDIUMBLOB NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
