DROP TABLE IF EXISTS monitor_rollup_summary;
