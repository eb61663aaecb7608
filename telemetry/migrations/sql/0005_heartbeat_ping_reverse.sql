DROP TABLE heartbeat_ping;
