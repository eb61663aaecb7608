"""Incidents, notifications and what holds them back.

Configuration of what to alert on lives in ``monitors`` (``AlertRule``,
``NotificationChannel``); this app owns what happens when a rule fires: the
incident a down period becomes, one ``Notification`` row per (event, channel)
claimed before it is sent, every delivery attempt, and the state that keeps
alerts quiet (flapping, maintenance windows, unhealthy channels).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models

from monitors.models import AlertRule, Monitor, NotificationChannel, Tag


class Incident(models.Model):
    """One down period of a monitor, from the confirming check to the recovering one."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="incidents")
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
        ordering = ["-started_at", "-id"]
        indexes = [
            # A monitor's incident history, newest first (dashboard, API, flapping).
            models.Index(fields=["monitor", "-started_at"], name="incident_monitor_started_idx"),
            # The sweep's "recently opened or closed" ranges (alerting.services._missed_alerts).
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


class Notification(models.Model):
    """One event for one channel; the row is claimed before anything is sent."""

    class Event(models.TextChoices):
        DOWN = "down"
        UP = "up"
        REMINDER = "reminder", "still down"
        FLAPPING = "flapping"
        SETTLED = "settled", "stopped flapping"
        LATENCY = "latency", "slow"
        LATENCY_OK = "latency_ok", "fast again"
        TLS_EXPIRY = "tls_expiry", "certificate expiring"
        TEST = "test"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"  # claimed by a worker; never sent again from this state
        RETRYING = "retrying"  # the last attempt failed in a way worth retrying
        SENT = "sent"
        FAILED = "failed"
        HELD = "held"  # suppressed by maintenance or flapping; recorded, not sent
        INTERRUPTED = "interrupted"  # the worker died mid-send; not resent (at most once)

    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, related_name="notifications"
    )
    monitor = models.ForeignKey(
        Monitor, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    event = models.CharField(max_length=12, choices=Event.choices)
    # What makes the event unique, e.g. "incident:42:down" or "tls:7:2026-11-28".
    dedup_key = models.CharField(max_length=120)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    hold_reason = models.CharField(max_length=20, blank=True, default="")
    payload = models.JSONField(default=dict)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Written by the claim's UPDATE so that the worker can read back exactly the rows it
    # won (MariaDB has no UPDATE ... RETURNING). db_default: older code can insert.
    claim_token = models.CharField(
        max_length=32, blank=True, default="", db_default="", editable=False
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Idempotency: a retried or redelivered alert task, or a replayed batch of
            # results, finds the row already there (alerting.services).
            models.UniqueConstraint(fields=["channel", "dedup_key"], name="notification_once"),
        ]
        indexes = [
            # The sweep looks for sends a killed worker left claimed (alerts_sweep).
            models.Index(fields=["status", "claimed_at"], name="notification_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.channel_id} ({self.status})"


class NotificationAttempt(models.Model):
    """One try at delivering a notification, kept for the admin."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    transient = models.BooleanField(default=False)
    error = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["notification_id", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.notification_id}: {'ok' if self.ok else 'failed'}"


class ChannelHealth(models.Model):
    """Whether a channel has been failing; shown in the admin, never blocks others."""

    channel = models.OneToOneField(
        NotificationChannel, on_delete=models.CASCADE, primary_key=True, related_name="health"
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    unhealthy_since = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "channel health"

    def __str__(self) -> str:
        return f"{self.channel_id}: {'unhealthy' if self.unhealthy_since else 'healthy'}"


class MonitorAlerting(models.Model):
    """Per-monitor alerting options and the state that flapping detection needs."""

    monitor = models.OneToOneField(
        Monitor, on_delete=models.CASCADE, primary_key=True, related_name="alerting"
    )
    reminder_minutes = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(10080)],
        help_text="Remind every this many minutes while down (0: never).",
    )
    # Epoch seconds of the recent state changes, pruned to the flapping window.
    change_times = models.JSONField(default=list, blank=True)
    flapping_since = models.DateTimeField(null=True, blank=True)
    last_change_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "monitor alerting options"
        verbose_name_plural = "monitor alerting options"
        indexes = [
            # The sweep's "who is flapping" query (alerts_sweep).
            models.Index(fields=["flapping_since"], name="alerting_flapping_idx"),
        ]

    def __str__(self) -> str:
        return f"alerting for {self.monitor_id}"


class AlertRuleState(models.Model):
    """Streaks for the latency rule and the last TLS reminder day."""

    rule = models.OneToOneField(
        AlertRule, on_delete=models.CASCADE, primary_key=True, related_name="state"
    )
    latency_streak = models.PositiveIntegerField(default=0)
    latency_firing = models.BooleanField(default=False)
    tls_notified_on = models.DateField(null=True, blank=True)
    last_result_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"state of rule {self.rule_id}"


class MaintenanceWindow(models.Model):
    """A period when checks still run and are stored but alerts are held."""

    class Repeat(models.TextChoices):
        NONE = "none", "Once"
        WEEKLY = "weekly", "Every week"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="maintenance_windows"
    )
    name = models.CharField(max_length=200)
    monitors = models.ManyToManyField(Monitor, blank=True, related_name="maintenance_windows")
    tags = models.ManyToManyField(Tag, blank=True, related_name="maintenance_windows")
    starts_at = models.DateTimeField(help_text="UTC. For a weekly window, the first one.")
    ends_at = models.DateTimeField()
    repeat = models.CharField(max_length=8, choices=Repeat.choices, default=Repeat.NONE)
    repeat_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "The window must end after it starts."})
        if (
            self.repeat == self.Repeat.WEEKLY
            and self.starts_at
            and self.ends_at
            and self.ends_at - self.starts_at >= dt.timedelta(days=7)
        ):
            raise ValidationError({"ends_at": "A weekly window must be shorter than a week."})

    def is_active(self, at: dt.datetime) -> bool:
        """Whether ``at`` falls in this window (or one of its weekly repeats)."""
        if at < self.starts_at:
            return False
        if self.repeat == self.Repeat.NONE:
            return at < self.ends_at
        if self.repeat_until and at >= self.repeat_until:
            return False
        offset = (at - self.starts_at) % dt.timedelta(days=7)
        return offset < self.ends_at - self.starts_at

    def next_period(self, at: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
        """The occurrence in progress at ``at``, else the next one; None once it is over.

        Mirrors ``is_active``: a weekly repeat starting at or after ``repeat_until``
        never happens, and one that ``repeat_until`` cuts short ends there."""
        length = self.ends_at - self.starts_at
        start = self.starts_at
        if self.repeat == self.Repeat.WEEKLY and at >= self.starts_at:
            week = dt.timedelta(days=7)
            start += (at - self.starts_at) // week * week
            if at >= start + length:
                start += week
        end = start + length
        if self.repeat == self.Repeat.WEEKLY and self.repeat_until:
            end = min(end, self.repeat_until)
        return (start, end) if at < end and start < end else None

    def periods_between(
        self, since: dt.datetime, until: dt.datetime
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        """The occurrences that overlap ``[since, until)``, clipped to it, oldest first
        (a weekly window over 90 days is 13 of them)."""
        periods = []
        at = since
        while (period := self.next_period(at)) is not None and period[0] < until:
            start, end = period
            periods.append((max(start, since), min(end, until)))
            at = end
        return periods
