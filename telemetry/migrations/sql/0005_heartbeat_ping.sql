-- Heartbeat pings: one row per ping a heartbeat monitor's job sent, RANGE-partitioned
-- by day on received_at, kept HEARTBEAT_PING_RETENTION_DAYS.
--
-- Written only by telemetry.ingest (telemetry.pings.pings_insert, in the transaction
-- that stores the batch's results); read by reporting.queries.heartbeat_pings (the
-- monitor page's and the API's last pings). A success or failure ping is also a
-- result in check_result (what the state, rollups and uptime count); this table keeps
-- what only a ping has: its signal, run id, body and where it came from. Every ping,
-- /start and /log included, has a row here.
CREATE TABLE heartbeat_ping (
    -- monitors_monitor.id: first in the primary key, so a monitor's pings are stored
    -- together and its last pings are one backward range scan.
    monitor_id BIGINT NOT NULL,
    -- When the web tier received it (UTC, microseconds: two pings of one job in one
    -- millisecond are two rows). With monitor_id the idempotency key of ingest's
    -- INSERT IGNORE (a replayed ping is a no-op) and the partition column.
    received_at DATETIME(6) NOT NULL,
    -- success, start, fail, log or exit (an exit status, below).
    kind VARCHAR(8) NOT NULL,
    -- /<exit-status> pings: 0-255; NULL for the others.
    exit_status SMALLINT UNSIGNED NULL,
    -- The rid query parameter: pairs a start with its end when runs overlap; '' when none.
    run_id VARCHAR(64) NOT NULL DEFAULT '',
    -- Run time (ms) from the paired start ping to this success or failure; NULL unpaired.
    duration_ms INT UNSIGNED NULL,
    -- GET, POST or HEAD.
    method VARCHAR(8) NOT NULL,
    -- The sender's address (REMOTE_ADDR, or the first X-Forwarded-For hop behind a
    -- trusted proxy) and User-Agent, clipped.
    remote_addr VARCHAR(45) NOT NULL DEFAULT '',
    user_agent VARCHAR(200) NOT NULL DEFAULT '',
    -- The POST body, at most HEARTBEAT_PING_BODY_MAX_BYTES (decoded as UTF-8, bad bytes
    -- replaced); body_truncated = 1 when the job sent more.
    body MEDIUMTEXT NOT NULL,
    body_truncated TINYINT(1) NOT NULL DEFAULT 0,
    -- heartbeat_ping_pk: the idempotency key, and the monitor page's "last pings"
    -- (WHERE monitor_id = %s ORDER BY received_at DESC LIMIT n), a backward range scan.
    PRIMARY KEY (monitor_id, received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
PARTITION BY RANGE COLUMNS (received_at) (
    PARTITION pmax VALUES LESS THAN (MAXVALUE)
);
