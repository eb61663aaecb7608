"""The REST API under /api/v1/: monitors, their results, uptime and latency."""
