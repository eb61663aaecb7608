DROP TABLE check_summary_pending;
