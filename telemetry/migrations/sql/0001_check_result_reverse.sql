DROP TABLE IF EXISTS check_result;
