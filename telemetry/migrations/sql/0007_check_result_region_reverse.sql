-- Back to one row per slot: the rows of regions other than 'local' go (they would
-- collide on the old key).
DELETE FROM check_result WHERE region <> 'local';
ALTER TABLE check_result
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (monitor_id, scheduled_at),
    DROP COLUMN region;
