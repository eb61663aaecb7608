"""Explicit serializers of the read side: results, stats and series. The monitor
serializer, which writes, lives with monitors (``monitors.serializers``)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from monitors.serializers import MonitorSerializer

__all__ = ["MonitorSerializer"]  # the API's monitor resource, re-exported for the views


class CheckRowSerializer(serializers.Serializer[Any]):
    scheduled_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    ok = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField()
    failure = serializers.CharField(allow_null=True, help_text="Why the check failed, if it did.")
    error = serializers.CharField(allow_blank=True)
    tls_expires_at = serializers.DateTimeField(allow_null=True)
    region = serializers.CharField(help_text="The probe region that made the check.")


class RegionLatestSerializer(serializers.Serializer[Any]):
    region = serializers.CharField()
    scheduled_at = serializers.DateTimeField(help_text="The region's newest check.")
    ok = serializers.BooleanField()
    duration_ms = serializers.IntegerField()
    failure = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class PingRowSerializer(serializers.Serializer[Any]):
    """A stored heartbeat ping (``reporting.queries.PingRow``)."""

    received_at = serializers.DateTimeField()
    kind = serializers.ChoiceField(
        choices=["success", "start", "fail", "log", "exit"], help_text="The ping's signal."
    )
    exit_status = serializers.IntegerField(allow_null=True, help_text="For kind exit: 0-255.")
    run_id = serializers.CharField(allow_blank=True, help_text="The rid parameter, if any.")
    duration_ms = serializers.IntegerField(
        allow_null=True, help_text="Run time from the paired start ping."
    )
    method = serializers.CharField()
    remote_addr = serializers.CharField(allow_blank=True)
    user_agent = serializers.CharField(allow_blank=True)
    body = serializers.CharField(allow_blank=True, help_text="The POST body, bounded.")
    body_truncated = serializers.BooleanField()


class ResultsPageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True, help_text="The next (older) page, or null.")
    results = CheckRowSerializer(many=True)


class LatencyFieldsSerializer(serializers.Serializer[Any]):
    checks = serializers.IntegerField()
    failures = serializers.IntegerField()
    uptime_percent = serializers.FloatField(allow_null=True)
    avg_ms = serializers.FloatField(allow_null=True)
    p50_ms = serializers.IntegerField(allow_null=True)
    p95_ms = serializers.IntegerField(allow_null=True)
    p99_ms = serializers.IntegerField(allow_null=True)
    min_ms = serializers.IntegerField(allow_null=True)
    max_ms = serializers.IntegerField(allow_null=True)


class StatsSerializer(LatencyFieldsSerializer):
    window = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()


class SeriesPointSerializer(LatencyFieldsSerializer):
    start = serializers.DateTimeField()


class SeriesSerializer(serializers.Serializer[Any]):
    bucket = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    points = SeriesPointSerializer(many=True)
