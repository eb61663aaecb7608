"""What to alert on, where to, and what holds alerts back.

Alert rules and notification channels, one ``Notification`` row per (event,
channel) claimed before it is sent, every delivery attempt, and the state that
keeps alerts quiet (flapping, maintenance windows, unhealthy channels). The
incident a down period becomes is opened with the monitor's live state, under its
row lock, so it lives in ``monitors``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.time import from_wall_time, time_zone, wall_time, wall_time_kind
from monitors import validators as v
from monitors.models import Incident, Monitor, Tag
from projects.models import InProject

logger = logging.getLogger(__name__)

WEEK = dt.timedelta(days=7)


def _port_or_none(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:  # a port that is no number: shown as no port
        return None


class NotificationChannel(InProject):
    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"
        SLACK = "slack", "Slack"
        APPRISE = "apprise", "Apprise URL"

    # Who created it (NULL once their account is deleted); access follows ``project``.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="channels",
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    config = models.JSONField(
        default=dict,
        help_text='email: {"address": …}; webhook: {"url": …, "secret": …}; slack: {"url": …}; '
        'apprise: {"url": …}',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Created by the monitors app before it moved here (migration alerting 0003).
        db_table = "monitors_notificationchannel"
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        if not isinstance(self.config, dict):
            raise ValidationError({"config": "The configuration must be an object."})
        required = {"email": "address", "webhook": "url", "slack": "url", "apprise": "url"}
        key = required.get(self.kind)
        if key is None:
            return
        value = self.config.get(key)
        if not isinstance(value, str) or not value:
            raise ValidationError({"config": f"A {self.get_kind_display()} channel needs {key!r}."})
        try:
            self._clean_value(value)
        except ValidationError as exc:
            raise ValidationError({"config": exc.messages}) from exc

    # Config keys whose values are secrets or hold one (a Slack or Apprise URL is its
    # own token; a webhook URL often carries one in its path or query).
    SECRET_KEYS = ("url", "secret")

    @property
    def target(self) -> str:
        """Where the channel sends, with nothing secret in it: an email address, or a
        URL's scheme and host only (``https://hooks.slack.com/…``)."""
        config = self.config if isinstance(self.config, dict) else {}
        if self.kind == self.Kind.EMAIL:
            return str(config.get("address", ""))
        parts = urlsplit(str(config.get("url", "")))
        if self.kind == self.Kind.APPRISE or not parts.hostname:
            return f"{parts.scheme}://…" if parts.scheme else ""
        port = f":{parts.port}" if _port_or_none(parts) else ""
        return f"{parts.scheme}://{parts.hostname}{port}/…"

    @property
    def has_secret(self) -> bool:
        """Whether a webhook signs its requests (a ``secret`` is stored)."""
        config = self.config if isinstance(self.config, dict) else {}
        return bool(config.get("secret"))

    def redact(self, text: str) -> str:
        """``text`` (a delivery error, say) with every secret of this channel's config
        replaced by ``***``: the secret, the URL and its path and query, which an HTTP
        client's error message repeats."""
        config = self.config if isinstance(self.config, dict) else {}
        pieces: set[str] = set()
        for key in self.SECRET_KEYS:
            value = config.get(key)
            if not isinstance(value, str) or not value:
                continue
            parts = urlsplit(value)
            pieces.update({value, parts.path, parts.query, parts.netloc.rpartition("@")[0]})
        # Longest first, so that a URL goes whole before its path; a bare "/" is no secret.
        for piece in sorted((p for p in pieces if len(p) > 1), key=len, reverse=True):
            text = text.replace(piece, "***")
        return text

    def _clean_value(self, value: str) -> None:
        if self.kind == self.Kind.EMAIL:
            from django.core.validators import validate_email

            validate_email(value)
        elif self.kind in (self.Kind.WEBHOOK, self.Kind.SLACK):
            v.validate_http_url(value)
        elif "://" not in value:
            raise ValidationError("An Apprise URL looks like scheme://…, e.g. tgram://token/chat.")


class AlertRule(models.Model):
    class Kind(models.TextChoices):
        DOWN = "down", "Down (consecutive failures)"
        LATENCY = "latency", "Latency above threshold (ms)"
        LATENCY_P95 = "latency_p95", "p95 latency over a window above threshold (ms)"
        TLS_EXPIRY = "tls_expiry", "TLS certificate expires within (days)"

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.DOWN)
    threshold = models.PositiveIntegerField(
        default=2,
        help_text="Failures in a row (down), milliseconds (latency) or days (TLS expiry).",
        validators=[MinValueValidator(1)],
    )
    consecutive_checks = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="For latency: how many checks in a row must be over the threshold.",
    )
    # Bounded so that the window's durations stay a small Redis sorted set per monitor
    # (alerting.latency): 60 min of checks every 30 s is 120 entries.
    # db_default too: other code versions sharing a database can still insert rules.
    window_minutes = models.PositiveSmallIntegerField(
        default=5,
        db_default=5,
        validators=[MinValueValidator(1), MaxValueValidator(v.MAX_LATENCY_WINDOW_MINUTES)],
        help_text="For p95 latency: the window, in minutes, the 95th percentile is taken over.",
    )
    channels = models.ManyToManyField(
        NotificationChannel,
        blank=True,
        related_name="rules",
        db_table="monitors_alertrule_channels",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        db_table = "monitors_alertrule"
        ordering = ["monitor_id", "kind", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ≥ {self.threshold}"

    def get_additional_data(self) -> dict[str, Any]:
        """The audit trail's project of this entry: the monitor's (django-auditlog)."""
        return {"project": self.monitor.project_id}

    def clean(self) -> None:
        limits: dict[str, tuple[int, int]] = {
            self.Kind.DOWN: (1, 100),
            self.Kind.LATENCY: (1, 600_000),
            self.Kind.LATENCY_P95: (1, 600_000),
            self.Kind.TLS_EXPIRY: (1, 365),
        }
        low, high = limits.get(self.kind, (1, 2**31))
        if self.threshold is not None and not low <= self.threshold <= high:
            raise ValidationError({"threshold": f"Must be between {low} and {high} for this rule."})
        if self.kind == self.Kind.LATENCY_P95:
            self._clean_window()

    def _clean_window(self) -> None:
        # A window that holds fewer than a few of the monitor's checks would make its
        # "95th percentile" the slowest single check: the blip this rule exists to ignore.
        monitor = self.monitor if self.monitor_id else None
        if monitor is None or not self.window_minutes or not monitor.interval_seconds:
            return
        checks = self.window_minutes * 60 // monitor.interval_seconds
        if checks < v.MIN_LATENCY_WINDOW_CHECKS:
            raise ValidationError(
                {
                    "window_minutes": f"{self.window_minutes} min holds {checks} checks at this "
                    f"monitor's interval ({monitor.interval_seconds} s); "
                    f"a p95 needs at least {v.MIN_LATENCY_WINDOW_CHECKS}."
                }
            )


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
        # Claimed by a worker. One that dies here leaves the send in doubt: after a lease
        # the sweep hands it out again (at least once, with the same delivery id).
        SENDING = "sending"
        RETRYING = "retrying"  # the last attempt failed in a way worth retrying
        SENT = "sent"
        FAILED = "failed"
        HELD = "held"  # suppressed by maintenance or flapping; recorded, not sent
        # Before at-least-once delivery: the worker died mid-send and it was not resent.
        # No new row takes this state; old rows keep it.
        INTERRUPTED = "interrupted"

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
    # Sends handed out again because a worker died mid-send (whether the first went out
    # nobody knows; the receiver can tell by the delivery id). db_default: older code
    # can insert.
    resends_in_doubt = models.PositiveSmallIntegerField(default=0, db_default=0)
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


def site_time_zone() -> str:
    """The zone a new maintenance window starts with: ``SENTINEL_TIME_ZONE``."""
    return str(settings.SENTINEL_TIME_ZONE)


class MaintenanceWindow(InProject):
    """A period when checks still run and are stored but alerts are held.

    ``starts_at`` and ``ends_at`` are instants (stored in UTC) of the first window. A
    weekly window repeats at the same wall-clock times in its ``time_zone``, so
    "Sunday 02:00-03:00 Europe/Berlin" stays 02:00-03:00 on Berlin's clocks in winter
    (01:00-02:00 UTC) and summer (00:00-01:00 UTC). On the nights the clocks change
    (``_occurrence``): a start the clocks skip moves forward with them and the window
    keeps its length; an ambiguous start or end is its first occurrence (RFC 5545).
    """

    class Repeat(models.TextChoices):
        NONE = "none", "Once"
        WEEKLY = "weekly", "Every week"

    # Who created it (NULL once their account is deleted); access follows ``project``.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="maintenance_windows",
    )
    name = models.CharField(max_length=200)
    monitors = models.ManyToManyField(Monitor, blank=True, related_name="maintenance_windows")
    tags = models.ManyToManyField(Tag, blank=True, related_name="maintenance_windows")
    starts_at = models.DateTimeField(help_text="For a weekly window, the first one.")
    ends_at = models.DateTimeField()
    # db_default: rows from before time zones (and inserts by older code sharing the
    # database) are UTC, which is how they always behaved.
    time_zone = models.CharField(
        max_length=64,
        default=site_time_zone,
        db_default="UTC",
        help_text="IANA name, e.g. Europe/Berlin or America/New_York. Times are entered "
        "and shown in it, and a weekly window keeps its wall-clock time across daylight "
        "saving changes.",
    )
    repeat = models.CharField(max_length=8, choices=Repeat.choices, default=Repeat.NONE)
    repeat_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            zone = time_zone(self.time_zone)
        except ValueError as exc:
            errors["time_zone"] = str(exc)
            zone = ZoneInfo("UTC")
        if self.starts_at and self.ends_at:
            if self.ends_at <= self.starts_at:
                errors["ends_at"] = "The window must end after it starts."
            elif self.repeat == self.Repeat.WEEKLY and (message := self._weekly_problem(zone)):
                errors["ends_at"] = message
        if errors:
            raise ValidationError(errors)

    def _weekly_problem(self, zone: ZoneInfo) -> str | None:
        """A weekly window repeats wall-clock times, so its wall-clock length counts too."""
        wall_length = wall_time(self.ends_at, zone) - wall_time(self.starts_at, zone)
        if max(self.ends_at - self.starts_at, wall_length) >= WEEK:
            return "A weekly window must be shorter than a week."
        if wall_length <= dt.timedelta(0):
            return (
                f"On the clocks of {zone.key} this window ends before it starts (they go "
                "back in between); a weekly window repeats those clock times."
            )
        return None

    @property
    def zone(self) -> ZoneInfo:
        """The window's zone; UTC (logged) for a name the zone database lacks, which
        ``clean()`` refuses, so that one bad row never stops alerting."""
        try:
            return time_zone(self.time_zone)
        except ValueError:
            logger.warning(
                "maintenance window %s: unknown time zone %r, using UTC", self.pk, self.time_zone
            )
            return ZoneInfo("UTC")

    def is_active(self, at: dt.datetime) -> bool:
        """Whether ``at`` falls in this window (or one of its weekly repeats)."""
        period = self.next_period(at)
        return period is not None and period[0] <= at

    def next_period(self, at: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
        """The occurrence in progress at ``at``, else the next one; None once it is over.

        ``is_active`` is this, so the page and the alert holds always agree. A weekly
        repeat starting at or after ``repeat_until`` never happens, and one that
        ``repeat_until`` cuts short ends there."""
        if self.repeat != self.Repeat.WEEKLY:
            start, end = self.starts_at, self.ends_at
            return (start, end) if at < end and start < end else None
        zone = self.zone
        # The week ``at`` falls in on the wall clock; the occurrence in progress or next
        # is that one, the one before (its end can be an hour later in UTC) or the next.
        week = max((wall_time(at, zone) - wall_time(self.starts_at, zone)) // WEEK, 0)
        for index in range(max(week - 1, 0), week + 3):
            start, end = self._occurrence(index, zone)
            if self.repeat_until is not None:
                if start >= self.repeat_until:
                    return None
                end = min(end, self.repeat_until)
            if at < end and start < end:
                return start, end
        return None

    def _occurrence(self, index: int, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """The ``index``-th weekly occurrence (0 is the first window, as entered).

        Its start and end are the first window's wall-clock times ``index`` weeks on,
        read as ``core.time.from_wall_time`` reads them: an ambiguous time is its first
        occurrence, a skipped one moves forward by the gap. When the start is skipped
        the whole occurrence moves with it and keeps its wall-clock length (02:00-03:00
        on the night Berlin's clocks jump from 02:00 to 03:00 is 03:00-04:00), rather
        than shrinking to nothing."""
        if index == 0:
            return self.starts_at, self.ends_at
        first = wall_time(self.starts_at, zone)
        length = wall_time(self.ends_at, zone) - first
        local_start = first + index * WEEK
        start = from_wall_time(local_start, zone)
        if wall_time_kind(local_start, zone) == "skipped":
            return start, start + length
        return start, from_wall_time(local_start + length, zone)

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
