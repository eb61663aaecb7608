"""Monitor configuration and live state.

Raw check results do not live here: they are high-volume rows in the partitioned
``telemetry`` tables. A Monitor holds what to check, how often, and the cheap live
state (status, last check, streaks) that the probe workers update in bulk.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from monitors import validators as v


class Tag(models.Model):
    name = models.SlugField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MonitorQuerySet(models.QuerySet["Monitor"]):
    """State changes for many monitors at once, each one UPDATE.

    They race with the dispatcher only on next_check_at: the dispatcher claims a
    slot with a conditional UPDATE on the old value, so whichever UPDATE lands
    second either fails its condition or moves the slot to now; a monitor is never
    checked twice for one slot.
    """

    def pause(self) -> int:
        """Stop checking; the dispatcher selects enabled monitors only."""
        return self.filter(enabled=True).update(
            enabled=False, status=Monitor.Status.PAUSED, updated_at=timezone.now()
        )

    def resume(self, *, now: dt.datetime | None = None) -> int:
        """Check again from now; the status is unknown until the first result."""
        now = now or timezone.now()
        return self.filter(enabled=False).update(
            enabled=True, status=Monitor.Status.PENDING, next_check_at=now, updated_at=now
        )


class Monitor(models.Model):
    class Kind(models.TextChoices):
        HTTP = "http", "HTTP(S)"
        TCP = "tcp", "TCP port"
        DNS = "dns", "DNS"
        TLS = "tls", "TLS certificate"

    class Method(models.TextChoices):
        GET = "GET"
        HEAD = "HEAD"
        POST = "POST"
        PUT = "PUT"
        PATCH = "PATCH"
        DELETE = "DELETE"
        OPTIONS = "OPTIONS"

    class Status(models.TextChoices):
        PENDING = "pending"
        UP = "up"
        DOWN = "down"
        PAUSED = "paused"

    class KeywordMode(models.TextChoices):
        PRESENT = "present", "must appear"
        ABSENT = "absent", "must not appear"

    # Kinds the probe engine can check today; the others are reserved names.
    SUPPORTED_KINDS = (Kind.HTTP, Kind.TCP, Kind.TLS)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="monitors"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.HTTP)
    url = models.CharField(
        "URL or target",
        max_length=2048,
        help_text="http(s)://… for HTTP; tcp://host:port or tls://host:port for those kinds.",
    )
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.GET)
    headers = models.JSONField(default=dict, blank=True, validators=[v.validate_headers])
    body = models.TextField(blank=True, default="", validators=[v.validate_body])
    expected_status_codes = models.CharField(
        max_length=200, default="200-299", validators=[v.validate_status_codes]
    )
    keyword = models.CharField(max_length=255, blank=True, default="")
    keyword_mode = models.CharField(
        max_length=8, choices=KeywordMode.choices, default=KeywordMode.PRESENT
    )
    timeout_seconds = models.PositiveSmallIntegerField(
        default=10,
        validators=[
            MinValueValidator(v.MIN_TIMEOUT_SECONDS),
            MaxValueValidator(v.MAX_TIMEOUT_SECONDS),
        ],
    )
    interval_seconds = models.PositiveIntegerField(
        default=60,
        validators=[
            MinValueValidator(v.MIN_INTERVAL_SECONDS),
            MaxValueValidator(v.MAX_INTERVAL_SECONDS),
        ],
    )
    enabled = models.BooleanField(default=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="monitors")
    # A single blip is not an outage: the status turns down only after this many
    # failed checks in a row, and up again after this many successes.
    confirm_failures = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Failed checks in a row before the monitor is down.",
    )
    recover_successes = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Successful checks in a row before a down monitor is up again.",
    )

    # Live state, written by the probe workers in bulk.
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(default=timezone.now)
    consecutive_failures = models.PositiveIntegerField(default=0)
    consecutive_successes = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MonitorQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            # The dispatcher's due query: WHERE enabled AND next_check_at <= now
            # ORDER BY next_check_at (monitors.dispatch).
            models.Index(fields=["enabled", "next_check_at"], name="monitor_due_idx"),
            # A user's list pages filtered by status (admin, dashboard, API).
            models.Index(fields=["owner", "status"], name="monitor_owner_status_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            self._clean_target()
        except ValidationError as exc:
            errors.setdefault("url", []).extend(exc.messages)
        if (
            self.timeout_seconds is not None
            and self.interval_seconds is not None
            and self.timeout_seconds >= self.interval_seconds
        ):
            errors.setdefault("timeout_seconds", []).append(
                f"The timeout ({self.timeout_seconds} s) must be shorter than the interval "
                f"({self.interval_seconds} s)."
            )
        if self.kind not in self.SUPPORTED_KINDS:
            errors.setdefault("kind", []).append(
                f"{self.get_kind_display()} monitors are not supported yet."
            )
        if errors:
            raise ValidationError(errors)

    def _clean_target(self) -> None:
        if self.kind == self.Kind.HTTP:
            v.validate_http_url(self.url)
        elif self.kind in (self.Kind.TCP, self.Kind.TLS):
            v.validate_host_port(self.url, self.kind)


class Incident(models.Model):
    """One down period of a monitor, from the confirming check to the recovering one."""

    monitor = models.ForeignKey("Monitor", on_delete=models.CASCADE, related_name="incidents")
    started_at = models.DateTimeField(help_text="The check that confirmed the outage.")
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    first_failure_kind = models.CharField(max_length=16, blank=True, default="")
    first_failure_message = models.CharField(max_length=200, blank=True, default="")
    checks_failed = models.PositiveIntegerField(default=0)
    # Equal to monitor_id while the incident is open and NULL once closed: a UNIQUE
    # index on it allows one open incident per monitor (NULLs do not collide), which
    # MariaDB cannot say with a partial index. The monitor's row lock in
    # monitors.state makes a second open impossible already; this makes it loud.
    open_monitor_id = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)
    reminders_sent = models.PositiveIntegerField(default=0)
    last_reminder_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Created by the alerting app before it moved here (migration monitors 0005).
        db_table = "alerting_incident"
        ordering = ["-started_at", "-id"]
        indexes = [
            # A monitor's incident history, newest first (dashboard, API, flapping).
            models.Index(fields=["monitor", "-started_at"], name="incident_monitor_started_idx"),
            # The alerting sweep's "recently opened or closed" ranges (missed alerts).
            models.Index(fields=["started_at"], name="incident_started_idx"),
            models.Index(fields=["ended_at"], name="incident_ended_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.monitor_id} down since {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    @property
    def duration(self) -> dt.timedelta | None:
        return None if self.ended_at is None else self.ended_at - self.started_at
