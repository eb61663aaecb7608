-- A rollup fold's deltas waiting to be added to the per-monitor summaries
-- (monitor_rollup_summary). The fold writes one row here in its own transaction and
-- the summaries take many such rows at once, at most every TELEMETRY_SUMMARY_FOLD_SECONDS
-- (telemetry/summary.py, summaries_defer and _fold_pending): a monitor's summary row is
-- then rewritten once per period instead of once per fold. Crash-safe as the rollups'
-- own pending deltas: written and deleted in the transactions that fold them.
CREATE TABLE check_summary_pending (
    id BIGINT NOT NULL AUTO_INCREMENT,
    -- How far the summaries trail the rollups (the oldest row's age).
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    -- orjson [[monitor_id, hour epoch seconds, checks, failures, latency sum ms], ...]
    deltas LONGBLOB NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
