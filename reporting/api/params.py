"""Query-string parameters, checked like a request body: anything wrong is a 400
naming the parameter, never a 500 from a query that got nonsense."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from rest_framework import serializers

from core.regions import region_name_problem
from reporting import queries
from telemetry.records import from_epoch_ms, to_epoch_ms

MAX_RESULTS_PAGE_SIZE = 500


class StatsParams(serializers.Serializer[Any]):
    window = serializers.ChoiceField(choices=list(queries.WINDOWS), default="24h")


class SeriesParams(serializers.Serializer[Any]):
    bucket = serializers.ChoiceField(choices=list(queries.BUCKETS), default="1h")
    since = serializers.DateTimeField(
        required=False, help_text="ISO 8601; default: `until` minus the bucket's default span."
    )
    until = serializers.DateTimeField(required=False, help_text="ISO 8601; default: now.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        bucket = queries.BUCKETS[attrs["bucket"]]
        until = attrs.get("until") or self.context["now"]
        since = attrs.get("since") or until - bucket.default_span
        if since >= until:
            raise serializers.ValidationError({"since": "since must be before until."})
        if until - since > bucket.max_span:
            raise serializers.ValidationError(
                {
                    "since": f"A {attrs['bucket']} series covers at most "
                    f"{bucket.max_span.days} days; ask for a coarser bucket."
                }
            )
        return {**attrs, "since": since, "until": until}


class PingsParams(serializers.Serializer[Any]):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)


class ResultsParams(serializers.Serializer[Any]):
    cursor = serializers.CharField(required=False, max_length=80)
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_RESULTS_PAGE_SIZE, default=50)

    @staticmethod
    def encode_cursor(checked_at: dt.datetime, region: str) -> str:
        """The next page starts below this row: its slot and region (several regions'
        checks share a slot)."""
        return base64.urlsafe_b64encode(f"{to_epoch_ms(checked_at)}:{region}".encode()).decode()

    def validate_cursor(self, value: str) -> tuple[dt.datetime, str | None]:
        """``(slot, region)``; a cursor of a release before regions has no region."""
        try:
            text = base64.urlsafe_b64decode(value.encode()).decode()
            millis, _, region = text.partition(":")
            if region and region_name_problem(region):
                raise ValueError(region)
            return from_epoch_ms(int(millis)), region or None
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError, OSError):
            raise serializers.ValidationError("Not a cursor from this API.") from None
