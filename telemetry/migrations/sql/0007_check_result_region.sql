-- check_result.region: the probe region that made the check (core.regions).
--
-- With several regions one slot of a monitor has one row per region, so the region
-- joins the primary key (check_result_pk): it stays ingest's idempotency key (a
-- replayed regional result is a duplicate key, ignored) and reporting's per-monitor
-- time-range scan (the region is last, so WHERE monitor_id = %s AND scheduled_at in
-- a range still reads one contiguous range per partition, in slot order).
--
-- Cost: an instant ADD COLUMN alone would be a metadata change in MariaDB 10.11, but
-- a new primary key rebuilds the table (every partition, about the time of copying
-- it: minutes for 40 million rows). ALGORITHM=INPLACE, LOCK=NONE keeps ingest and
-- reads running meanwhile (concurrent writes go to the online log); the rebuild needs
-- free disk about the size of the largest partition. The existing rows are from the
-- one region there was, 'local' (the column's default).
--
-- ascii_bin: region names are lower-case letters, digits and dashes (1 byte each,
-- compared as bytes, as Python compares them).
ALTER TABLE check_result
    ADD COLUMN region VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
        DEFAULT 'local' AFTER tls_expires_at,
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (monitor_id, scheduled_at, region),
    ALGORITHM = INPLACE, LOCK = NONE;
