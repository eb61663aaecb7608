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

    def request_check(self, *, now: dt.datetime | None = None) -> int:
        """Make enabled monitors due now, so that the next dispatch checks them."""
        return self.filter(enabled=True).update(next_check_at=now or timezone.now())


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


class NotificationChannel(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"
        SLACK = "slack", "Slack"
        APPRISE = "apprise", "Apprise URL"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="channels"
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
    channels = models.ManyToManyField(NotificationChannel, blank=True, related_name="rules")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["monitor_id", "kind", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ≥ {self.threshold}"

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
