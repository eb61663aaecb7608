DROP TABLE IF EXISTS check_rollup_pending;
