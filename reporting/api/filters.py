from __future__ import annotations

import django_filters  # type: ignore[import-untyped]  # no stubs published

from monitors.models import Monitor, Tag


class MonitorFilter(django_filters.FilterSet):
    """``?status=down&kind=http&tag=shop``; the owner+status index serves ``status``."""

    status = django_filters.ChoiceFilter(choices=Monitor.Status.choices)
    kind = django_filters.ChoiceFilter(choices=Monitor.Kind.choices)
    tag = django_filters.CharFilter(field_name="tags__name", label="Tag name")

    class Meta:
        model = Monitor
        fields = ["status", "kind", "tag"]


class TagFilter(django_filters.FilterSet):
    """``?name=shop``."""

    name = django_filters.CharFilter(max_length=50)

    class Meta:
        model = Tag
        fields = ["name"]
