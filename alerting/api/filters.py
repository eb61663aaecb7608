"""Query-string filters of the alerting resources; a bad value is a 400 naming it."""

from __future__ import annotations

from typing import Any

import django_filters  # type: ignore[import-untyped]  # no stubs published
from django import forms
from django.db.models import QuerySet

from alerting.models import AlertRule, MaintenanceWindow, NotificationChannel
from monitors.models import Incident


class IdFilter(django_filters.NumberFilter):
    """A whole-number id (``NumberFilter`` alone takes decimals)."""

    field_class = forms.IntegerField

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        super().__init__(**kwargs)


class TrueFalseFilter(django_filters.TypedChoiceFilter):
    """``true`` or ``false``, and nothing else (django-filter's boolean filter reads
    anything else as "not given" and filters nothing: a typo would answer everything)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        kwargs.setdefault("coerce", lambda value: value == "true")
        super().__init__(**kwargs)


class NotificationChannelFilter(django_filters.FilterSet):
    """``?kind=webhook``."""

    kind = django_filters.ChoiceFilter(choices=NotificationChannel.Kind.choices)

    class Meta:
        model = NotificationChannel
        fields = ["kind"]


class AlertRuleFilter(django_filters.FilterSet):
    """``?monitor=7&kind=latency&enabled=true``."""

    monitor = IdFilter(field_name="monitor_id")
    kind = django_filters.ChoiceFilter(choices=AlertRule.Kind.choices)
    enabled = TrueFalseFilter()

    class Meta:
        model = AlertRule
        fields = ["monitor", "kind", "enabled"]


class MaintenanceWindowFilter(django_filters.FilterSet):
    """``?monitor=7&repeat=weekly``."""

    monitor = IdFilter(field_name="monitors", distinct=True)
    repeat = django_filters.ChoiceFilter(choices=MaintenanceWindow.Repeat.choices)

    class Meta:
        model = MaintenanceWindow
        fields = ["monitor", "repeat"]


class IncidentFilter(django_filters.FilterSet):
    """``?monitor=7&open=true&started_after=2026-11-01T00:00:00Z&started_before=…``."""

    monitor = IdFilter(field_name="monitor_id")
    open = TrueFalseFilter(method="filter_open", label="Only open (true) or closed (false) ones")
    started_after = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = Incident
        fields = ["monitor", "open", "started_after", "started_before"]

    def filter_open(self, queryset: QuerySet[Incident], name: str, value: Any) -> Any:
        # open_monitor_id is set exactly while an incident is open (its unique index).
        return queryset.filter(open_monitor_id__isnull=not value)
