"""API views: parse and check the query string, call one reporting query, answer.

Ownership is enforced by the queryset (``monitors_visible_to``): another user's
monitor is a 404 on every endpoint, never its data.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from monitors.models import Monitor, Tag
from monitors.regions import monitor_regions
from monitors.selectors import monitors_visible_to
from monitors.serializers import (
    CheckNowResultSerializer,
    MonitorBulkResultSerializer,
    MonitorBulkSerializer,
    TagSerializer,
)
from monitors.services import monitors_check_now
from projects.api.permissions import InProjectMixin
from projects.roles import Area
from reporting import cache, queries
from reporting.api.filters import MonitorFilter, TagFilter
from reporting.api.params import PingsParams, ResultsParams, SeriesParams, StatsParams
from reporting.api.serializers import (
    CheckRowSerializer,
    LatencyFieldsSerializer,
    MonitorSerializer,
    PingRowSerializer,
    RegionLatestSerializer,
    ResultsPageSerializer,
    SeriesSerializer,
    StatsSerializer,
)
from reporting.api.throttling import CheckNowRateThrottle, TokenRateThrottle


@extend_schema_view(
    list=extend_schema(summary="List your monitors (filter by status, kind, tag)"),
    create=extend_schema(summary="Create a monitor"),
    retrieve=extend_schema(summary="Get a monitor"),
    partial_update=extend_schema(summary="Change a monitor"),
    destroy=extend_schema(summary="Delete a monitor and stop checking it"),
)
class MonitorViewSet(InProjectMixin, viewsets.ModelViewSet[Monitor]):
    serializer_class = MonitorSerializer
    project_area = Area.MONITORS
    filterset_class = MonitorFilter
    # PUT would demand every field; PATCH is the one way to change a monitor.
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Monitor]:
        return monitors_visible_to(self.request.user).prefetch_related("tags").order_by("id")

    @extend_schema(
        summary="Check this monitor now, outside its schedule",
        request=None,
        responses={202: CheckNowResultSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="check-now",
        throttle_classes=[TokenRateThrottle, CheckNowRateThrottle],
    )
    def check_now(self, request: Request, pk: str | None = None) -> Response:
        queued = monitors_check_now(monitor_ids=[self.get_object().pk])
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Pause, resume or check now many of your monitors at once",
        request=MonitorBulkSerializer,
        responses={200: MonitorBulkResultSerializer},
    )
    @action(
        detail=False,
        methods=["post"],
        filterset_class=None,
        pagination_class=None,
        throttle_classes=[TokenRateThrottle, CheckNowRateThrottle],
    )
    def bulk(self, request: Request) -> Response:
        serializer = MonitorBulkSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        return Response(MonitorBulkResultSerializer(serializer.save()).data)

    @extend_schema(
        summary="A heartbeat's last pings, newest first, with their bodies",
        parameters=[PingsParams],
        responses=PingRowSerializer(many=True),
    )
    # A plain list (at most ``limit``), not a page of monitors, and no monitor filters.
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def pings(self, request: Request, pk: str | None = None) -> Response:
        monitor = self.get_object()
        params = PingsParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        rows = queries.heartbeat_pings(monitor_id=monitor.pk, limit=params.validated_data["limit"])
        return Response(PingRowSerializer(rows, many=True).data)

    @extend_schema(
        summary="Raw check results, newest first (cursor pagination)",
        parameters=[
            OpenApiParameter("cursor", OpenApiTypes.STR, description="From the previous page."),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 500, default 50."),
        ],
        responses=ResultsPageSerializer,
    )
    @action(detail=True, methods=["get"])
    def results(self, request: Request, pk: str | None = None) -> Response:
        monitor = self.get_object()
        params = ResultsParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        before, before_region = params.validated_data.get("cursor") or (None, None)
        size = params.validated_data["page_size"]
        rows = queries.recent_checks(
            monitor_id=monitor.pk, before=before, before_region=before_region, limit=size + 1
        )
        next_url = None
        if len(rows) > size:
            rows = rows[:size]
            cursor = ResultsParams.encode_cursor(rows[-1].scheduled_at, rows[-1].region)
            next_url = request.build_absolute_uri(f"?cursor={cursor}&page_size={size}")
        return Response({"next": next_url, "results": CheckRowSerializer(rows, many=True).data})

    @extend_schema(
        summary="Status and latency of the monitor's newest check from each region",
        responses=RegionLatestSerializer(many=True),
    )
    # A plain list (one row per region), not a page of monitors, and no monitor filters.
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def regions(self, request: Request, pk: str | None = None) -> Response:
        monitor = self.get_object()
        rows = queries.region_latest(
            monitor_id=monitor.pk, regions=monitor_regions(monitor.regions), now=timezone.now()
        )
        return Response(RegionLatestSerializer(rows, many=True).data)

    @extend_schema(
        summary="Uptime and latency percentiles over a window",
        parameters=[StatsParams],
        responses=StatsSerializer,
    )
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str | None = None) -> Response:
        monitor = self.get_object()
        params = StatsParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        window = params.validated_data["window"]
        data = cache.cached_report(
            monitor=monitor,
            kind="stats",
            key=window,
            compute=lambda: _stats(monitor, window, timezone.now()),
        )
        return Response(data)

    @extend_schema(
        summary="Latency series per bucket (avg, p50, p95, p99, min, max)",
        parameters=[SeriesParams],
        responses=SeriesSerializer,
    )
    @action(detail=True, methods=["get"])
    def series(self, request: Request, pk: str | None = None) -> Response:
        monitor = self.get_object()
        params = SeriesParams(data=request.query_params, context={"now": timezone.now()})
        params.is_valid(raise_exception=True)
        bucket = params.validated_data["bucket"]
        since: dt.datetime = params.validated_data["since"]
        until: dt.datetime = params.validated_data["until"]
        data = cache.cached_report(
            monitor=monitor,
            kind="series",
            # Keyed by what was asked, so "the last 30 days" is one entry, not one per second.
            key=":".join(
                [
                    bucket,
                    request.query_params.get("since", ""),
                    request.query_params.get("until", ""),
                ]
            ),
            compute=lambda: _series(monitor, bucket, since, until),
        )
        return Response(data)


@extend_schema_view(
    list=extend_schema(summary="List the tags on your monitors"),
    retrieve=extend_schema(summary="Get a tag"),
)
class TagViewSet(viewsets.ReadOnlyModelViewSet[Tag]):
    """Tags are labels shared by all users (set through a monitor's or a window's
    ``tags``); each user sees those on their own monitors, with how many carry it."""

    serializer_class = TagSerializer
    filterset_class = TagFilter

    def get_queryset(self) -> QuerySet[Tag]:
        # The count is taken over the same join as the filter: your monitors only.
        mine = Tag.objects.filter(monitors__in=monitors_visible_to(self.request.user))
        return mine.annotate(monitor_count=Count("monitors")).order_by("name")


def _stats(monitor: Monitor, window: str, now: dt.datetime) -> dict[str, Any]:
    since = now - queries.WINDOWS[window]
    summary = queries.window_summary(monitor_id=monitor.pk, since=since, until=now)
    data = LatencyFieldsSerializer(summary).data
    return {**data, "window": window, "since": since.isoformat(), "until": now.isoformat()}


def _series(monitor: Monitor, bucket: str, since: dt.datetime, until: dt.datetime) -> Any:
    points = queries.latency_series(monitor_id=monitor.pk, bucket=bucket, since=since, until=until)
    data = {"bucket": bucket, "since": since, "until": until, "points": points}
    return dict(SeriesSerializer(data).data)
