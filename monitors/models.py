"""Monitor configuration and live state.

Raw check results do not live here: they are high-volume rows in the partitioned
``telemetry`` tables. A Monitor holds what to check, how often, and the cheap live
state (status, last check, streaks) that the probe workers update in bulk.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone

from core.db import update_from_values
from core.time import to_epoch_ms
from monitors import validators as v
from monitors.heartbeat_schedule import cron_problem, heartbeat_deadline, heartbeat_due
from projects.models import InProject

# What an HTTP check accepts unless told otherwise.
DEFAULT_STATUS_CODES = "200-299"
# A heartbeat's next_check_at: never due, so the probe dispatch never checks it (the
# heartbeat pass, monitors.heartbeats, watches heartbeat_deadline_at instead).
NEVER = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
# What Monitor.heartbeat_state says.
HEARTBEAT_STATES = ("new", "up", "late", "down", "paused")


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

    @transaction.atomic
    def pause(self, *, now: dt.datetime | None = None) -> int:
        """Stop checking; the dispatcher selects enabled monitors only. An open incident
        ends now, with the reason "paused": the outage is no longer watched, and its
        end is not a recovery (no "up again" alert, and a resumed monitor that is still
        down opens a new incident). Returns how many monitors were running."""
        now = now or timezone.now()
        ids = list(self.filter(enabled=True).values_list("pk", flat=True))
        if not ids:
            return 0
        paused = Monitor.objects.filter(pk__in=ids, enabled=True).update(
            enabled=False, status=Monitor.Status.PAUSED, heartbeat_deadline_at=None, updated_at=now
        )
        incidents_end(ends=[(pk, now) for pk in ids], reason=Incident.EndReason.PAUSED)
        return paused

    def resume(self, *, now: dt.datetime | None = None) -> int:
        """Check again from now; the status is unknown until the first result and the
        streaks start afresh (what happens after a resume is a new story)."""
        now = now or timezone.now()
        return self.filter(enabled=False).update(
            enabled=True,
            status=Monitor.Status.PENDING,
            # A heartbeat waits for its next ping ("new" again), it is never probed.
            next_check_at=models.Case(
                models.When(kind=Monitor.Kind.HEARTBEAT, then=models.Value(NEVER)),
                default=models.Value(now),
            ),
            heartbeat_deadline_at=None,
            consecutive_failures=0,
            consecutive_successes=0,
            recent_failures=0,
            # A fresh start: results from before it are history, not the state's past
            # (monitors.state rebuilds a late result's state from here at the earliest).
            state_checkpoints=[[to_epoch_ms(now), Monitor.Status.PENDING.value, 0, 0, 0]],
            updated_at=now,
        )


class Monitor(InProject):
    class Kind(models.TextChoices):
        HTTP = "http", "HTTP(S)"
        TCP = "tcp", "TCP port"
        DNS = "dns", "DNS"
        TLS = "tls", "TLS certificate"
        PING = "ping", "Ping (ICMP)"
        HEARTBEAT = "heartbeat", "Heartbeat (push)"

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

    class DnsRecordType(models.TextChoices):
        # Labels given: the default would title-case them ("Aaaa").
        A = "A", "A"
        AAAA = "AAAA", "AAAA"
        CNAME = "CNAME", "CNAME"
        MX = "MX", "MX"
        TXT = "TXT", "TXT"
        NS = "NS", "NS"
        SOA = "SOA", "SOA"
        CAA = "CAA", "CAA"

    class DnsMatch(models.TextChoices):
        """How a DNS answer is judged against the expected values."""

        RESOLVES = "resolves", "resolves at all"
        ANY = "any", "any of the expected values"
        ALL = "all", "all of the expected values"
        EXACT = "exact", "exactly the expected values"

    # Kinds the probe engine can check today; the others are reserved names.
    SUPPORTED_KINDS = (Kind.HTTP, Kind.TCP, Kind.TLS, Kind.DNS, Kind.PING, Kind.HEARTBEAT)
    # Kinds the probe engine checks; a heartbeat is pinged by the job it watches.
    PROBED_KINDS = (Kind.HTTP, Kind.TCP, Kind.TLS, Kind.DNS, Kind.PING)

    # Who created it; access follows ``project``. Kept (NULL) when that user's account
    # is deleted, so a team's monitors outlive a member who leaves.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="monitors",
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.HTTP)
    url = models.CharField(
        "URL or target",
        max_length=2048,
        blank=True,
        help_text="http(s)://… for HTTP; tcp://host:port or tls://host:port for those kinds; "
        "dns://name for DNS; ping://host for ping; empty for a heartbeat (its ping URL is "
        "made for it).",
    )
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.GET)
    headers = models.JSONField(default=dict, blank=True, validators=[v.validate_headers])
    body = models.TextField(blank=True, default="", validators=[v.validate_body])
    expected_status_codes = models.CharField(
        max_length=200, default=DEFAULT_STATUS_CODES, validators=[v.validate_status_codes]
    )
    keyword = models.CharField(max_length=255, blank=True, default="")
    keyword_mode = models.CharField(
        max_length=8, choices=KeywordMode.choices, default=KeywordMode.PRESENT
    )
    # db_default too: code that predates the column (a rolling deploy's old workers, a
    # branch's scripts on a shared database) still inserts monitors.
    max_body_kib = models.PositiveIntegerField(
        "page read limit (KiB)",
        default=v.DEFAULT_PAGE_KIB,
        db_default=v.DEFAULT_PAGE_KIB,
        validators=[MinValueValidator(v.MIN_PAGE_KIB), MaxValueValidator(v.MAX_PAGE_KIB)],
        help_text=(
            "How much of the page the keyword is looked for in, and the largest JSON body "
            "assertions read (1 to 10240 KiB). A keyword that must appear and is not "
            "found in a longer page, or a longer JSON body, is reported as such."
        ),
    )
    # Conditions on the JSON body of an HTTP check, all of which must hold
    # (monitors/probes/jsonbody.py).
    json_assertions = models.JSONField(
        "JSON assertions",
        default=list,
        db_default=[],
        blank=True,
        validators=[v.validate_json_assertions],
        help_text='A list of conditions on the JSON body, e.g. [{"path": "status.indicator", '
        '"op": "==", "value": "none"}]; ops ==, !=, <, >, contains, exists.',
    )
    # DNS monitors: the record of the url's name to look up, where, and what counts as
    # up. db_default, like max_body_kib's, for code that predates the columns.
    dns_record_type = models.CharField(
        "DNS record type",
        max_length=5,
        choices=DnsRecordType.choices,
        default=DnsRecordType.A,
        db_default=DnsRecordType.A,
    )
    dns_resolver = models.CharField(
        "DNS resolver",
        max_length=47,  # [IPv6]:port
        blank=True,
        default="",
        db_default="",
        validators=[v.validate_dns_resolver],
        help_text="IP address and optional port of the resolver to ask, e.g. 9.9.9.9 or "
        "9.9.9.9:5353; empty: the system's resolver.",
    )
    dns_expected = models.JSONField(
        "expected DNS values",
        default=list,
        db_default=[],
        blank=True,
        validators=[v.validate_dns_expected],
        help_text='A list, e.g. ["192.0.2.1"] for A, ["10 mail.example.com"] for MX, '
        '["v=spf1 -all"] for TXT.',
    )
    dns_match = models.CharField(
        "DNS answer must match",
        max_length=8,
        choices=DnsMatch.choices,
        default=DnsMatch.RESOLVES,
        db_default=DnsMatch.RESOLVES,
    )
    # Ping monitors: how many echo requests a check sends, and what counts as up. A
    # check fails when more than ping_max_loss_percent of them are lost, or when their
    # mean round trip is over ping_max_rtt_ms (no limit when empty).
    ping_count = models.PositiveSmallIntegerField(
        "echo requests per check",
        default=v.DEFAULT_PING_COUNT,
        db_default=v.DEFAULT_PING_COUNT,
        validators=[MinValueValidator(v.MIN_PING_COUNT), MaxValueValidator(v.MAX_PING_COUNT)],
        help_text="1 to 10 echo requests, 0.2 s apart.",
    )
    ping_max_loss_percent = models.PositiveSmallIntegerField(
        "most packet loss (%)",
        default=v.DEFAULT_PING_MAX_LOSS_PERCENT,
        db_default=v.DEFAULT_PING_MAX_LOSS_PERCENT,
        validators=[MaxValueValidator(v.MAX_PING_MAX_LOSS_PERCENT)],
        help_text="The check fails when more of the echo requests than this are lost "
        "(0 to 99; 0: any loss fails). All of them lost is a timeout.",
    )
    ping_max_rtt_ms = models.PositiveIntegerField(
        "slowest mean round trip (ms)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(v.MAX_PING_RTT_MS)],
        help_text="The check fails when the mean round-trip time is over this; empty: no limit.",
    )
    # Heartbeat monitors (pushed, monitors.heartbeats): the job pings /ping/<uuid> or
    # /ping/<owner's ping key>/<slug>; the next ping is due a period after the last one,
    # or at the cron expression's next time in heartbeat_tz, and the heartbeat is down
    # once the grace time after that has passed too.
    heartbeat_uuid = models.UUIDField(
        "ping UUID", null=True, blank=True, unique=True, editable=False
    )
    # NULL, not "", when unset: the unique (owner, slug) constraint lets NULLs repeat.
    heartbeat_slug = models.SlugField(  # noqa: DJ001
        "ping slug",
        max_length=100,
        null=True,
        blank=True,
        help_text="Optional: also pinged at /ping/<your ping key>/<slug>; unique among "
        "your monitors.",
    )
    heartbeat_period_seconds = models.PositiveIntegerField(
        "period (s)",
        default=v.DEFAULT_HEARTBEAT_PERIOD_SECONDS,
        db_default=v.DEFAULT_HEARTBEAT_PERIOD_SECONDS,
        validators=[
            MinValueValidator(v.MIN_HEARTBEAT_SECONDS),
            MaxValueValidator(v.MAX_HEARTBEAT_SECONDS),
        ],
        help_text="How often the job pings (60 s to 365 days); ignored with a cron schedule.",
    )
    heartbeat_cron = models.CharField(
        "cron schedule",
        max_length=100,
        blank=True,
        default="",
        db_default="",
        help_text="Instead of a period: when the job runs, as a cron expression "
        "(e.g. 0 3 * * * for 03:00 daily) in the time zone below.",
    )
    heartbeat_tz = models.CharField(
        "time zone",
        max_length=64,
        default="UTC",
        db_default="UTC",
        validators=[v.validate_time_zone],
        help_text="The cron schedule's IANA time zone, e.g. Europe/Berlin.",
    )
    heartbeat_grace_seconds = models.PositiveIntegerField(
        "grace time (s)",
        default=v.DEFAULT_HEARTBEAT_GRACE_SECONDS,
        db_default=v.DEFAULT_HEARTBEAT_GRACE_SECONDS,
        validators=[
            MinValueValidator(
                v.MIN_HEARTBEAT_SECONDS,
                message="The grace time must be at least a minute (60 s): a job that runs "
                "is never exactly on time.",
            ),
            MaxValueValidator(v.MAX_HEARTBEAT_SECONDS),
        ],
        help_text="How long after the due time a ping may still come before the heartbeat "
        "is down (late meanwhile).",
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
    # Like ``curl --resolve``: connect to this address while the URL's host name is the
    # one sent (HTTP Host, TLS server name), e.g. one backend of a load balancer.
    connect_to = models.CharField(
        "connect to",
        max_length=45,
        blank=True,
        default="",
        validators=[v.validate_connect_to],
        help_text="Optional IP address to connect to instead of the URL host's DNS answer; "
        "the Host header and TLS server name stay the URL's host.",
    )
    tls_verify = models.BooleanField(
        "verify the TLS certificate",
        default=True,
        help_text="Off: any certificate is accepted (its expiry is still recorded).",
    )
    tls_ca_bundle = models.TextField(
        "trusted CA certificates",
        blank=True,
        default="",
        validators=[v.validate_ca_bundle],
        help_text="PEM certificates of a private CA this monitor trusts, besides the system's.",
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
    # Failures that are not in a row still add up: down when this many of the last
    # ``confirm_window`` checks failed, so a target failing every other check is
    # caught (by the 3rd failure, the 5th check, with the defaults) instead of
    # staying up for ever under the in-a-row rule.
    confirm_window = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(2), MaxValueValidator(v.MAX_CONFIRM_WINDOW)],
        help_text="How many recent checks the 'failures out of recent checks' rule looks at.",
    )
    confirm_window_failures = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(v.MAX_CONFIRM_WINDOW)],
        help_text="Failed checks among the recent ones before the monitor is down.",
    )
    recover_successes = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Successful checks in a row before a down monitor is up again.",
    )
    # Where the monitor is checked from: the names of SENTINEL_REGIONS, or none for every
    # region. Each slot goes to all of them at once (monitors.dispatch), and the slot
    # failed when ``regions_confirm`` of them say so (monitors.regions).
    regions = models.JSONField(
        default=list,
        blank=True,
        validators=[v.validate_regions],
        help_text="Regions to check from; empty for every region.",
    )
    regions_confirm = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(v.MAX_REGIONS)],
        help_text="Regions that must see a check fail for it to count as failed; "
        "empty for a majority of the monitor's regions.",
    )

    # Live state, written by ingest in bulk as it stores the results (monitors.state).
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(default=timezone.now)
    consecutive_failures = models.PositiveIntegerField(default=0)
    consecutive_successes = models.PositiveIntegerField(default=0)
    # The outcomes of the last checks, newest in bit 0, 1 for a failure (at most
    # MAX_CONFIRM_WINDOW bits are kept): what the window rule counts.
    recent_failures = models.PositiveIntegerField(default=0)
    # Up to two earlier live states, [[slot_ms, status, failures, successes, recent]],
    # from which a late result is applied in its place (monitors.state).
    state_checkpoints = models.JSONField(default=list, blank=True, editable=False)
    # Heartbeats: the newest success or failure ping stored (ingest, monitors.heartbeats),
    # and when the heartbeat goes down without another one (None: new, paused, or down
    # already, nothing to wait for). The heartbeat pass selects by the latter.
    heartbeat_last_ping_at = models.DateTimeField(null=True, blank=True, editable=False)
    heartbeat_deadline_at = models.DateTimeField(null=True, blank=True, editable=False)

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
            # A project's status counts (reporting.queries.status_counts, fleet_overview).
            models.Index(fields=["project", "status"], name="monitor_project_status_idx"),
            # The heartbeat pass: WHERE heartbeat_deadline_at <= now (monitors.heartbeats);
            # NULL for every other kind.
            models.Index(fields=["heartbeat_deadline_at"], name="monitor_heartbeat_deadline_idx"),
        ]
        constraints = [
            # /ping/<ping key>/<slug> names one monitor (NULL slugs do not collide).
            models.UniqueConstraint(
                fields=["owner", "heartbeat_slug"], name="monitor_owner_slug_uq"
            ),
        ]

    _loaded: dict[str, Any] | None = None  # see _loaded_values
    _row: tuple[Any, Any] | None = None  # the row from_db built this instance from

    # What a configuration save writes. The live state (status, streaks, last and next
    # check) is written by the probe path, the dispatcher and pause/resume, in bulk;
    # a form loaded a minute ago must not write back the state it read then.
    LIVE_STATE_FIELDS = frozenset(
        {
            "status",
            "last_checked_at",
            "next_check_at",
            "consecutive_failures",
            "consecutive_successes",
            "recent_failures",
            "state_checkpoints",
            "enabled",
            "heartbeat_last_ping_at",
            "heartbeat_deadline_at",
        }
    )
    # What and how often a monitor is checked: changing any moves the next check
    # to at most one (new) interval away.
    SCHEDULE_FIELDS = (
        "kind",
        "url",
        "method",
        "headers",
        "body",
        "expected_status_codes",
        "keyword",
        "keyword_mode",
        "max_body_kib",
        "json_assertions",
        "connect_to",
        "tls_verify",
        "tls_ca_bundle",
        "dns_record_type",
        "dns_resolver",
        "dns_expected",
        "dns_match",
        "ping_count",
        "ping_max_loss_percent",
        "ping_max_rtt_ms",
        "interval_seconds",
        "timeout_seconds",
    )
    # A heartbeat's configuration: changing the schedule moves its deadline.
    HEARTBEAT_FIELDS = (
        "heartbeat_slug",
        "heartbeat_period_seconds",
        "heartbeat_cron",
        "heartbeat_tz",
        "heartbeat_grace_seconds",
    )
    # How results become a status (monitors.state).
    CONFIRMATION_FIELDS = (
        "regions",
        "regions_confirm",
        "confirm_failures",
        "confirm_window",
        "confirm_window_failures",
        "recover_successes",
    )

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Insert a new monitor whole; for an existing one write its configuration only
        (never the live state it was loaded with), move the next check closer when
        what or how often it is checked changed, and pause or resume it (closing an
        open incident) when ``enabled`` changed."""
        loaded = self._loaded_values()
        self.prepare_config()
        if self._state.adding or loaded is None or kwargs.get("update_fields") is not None:
            if self._state.adding and not self.enabled:
                self.status = self.Status.PAUSED  # created paused, from any writer
            super().save(*args, **kwargs)
            self._loaded = self._snapshot()
            return
        fields = [
            f.name
            for f in self._meta.concrete_fields
            if not f.primary_key and f.name not in self.LIVE_STATE_FIELDS
        ]
        now = timezone.now()
        rescheduled = any(
            loaded.get(name, getattr(self, name)) != getattr(self, name)
            for name in self.SCHEDULE_FIELDS
        )
        with transaction.atomic(using=kwargs.get("using")):
            super().save(*args, update_fields=fields, **kwargs)
            if rescheduled:
                # A conditional UPDATE that only ever moves the next check earlier: the
                # dispatcher may have claimed a slot since this monitor was loaded, and
                # writing back the loaded time would hand that slot out twice.
                latest = now + dt.timedelta(seconds=self.interval_seconds)
                Monitor.objects.filter(pk=self.pk, next_check_at__gt=latest).update(
                    next_check_at=latest
                )
            if self.kind == self.Kind.HEARTBEAT:
                self._heartbeat_reschedule(loaded)
            if loaded.get("enabled", self.enabled) != self.enabled:
                same = Monitor.objects.filter(pk=self.pk)
                same.resume(now=now) if self.enabled else same.pause(now=now)
        self._loaded = self._snapshot()

    def prepare_config(self) -> None:
        """Bring the configuration to what a save stores (a heartbeat confirms on one
        result, an empty slug is none). Writers that compare a wanted configuration
        with a stored one (configuration files) prepare theirs the same way first, so
        that applying it twice changes nothing the second time."""
        if self.kind == self.Kind.HEARTBEAT:
            self._heartbeat_prepare()

    def _heartbeat_prepare(self) -> None:
        """A heartbeat has a ping UUID, is never probed, and goes down on the first
        failure (a /fail ping or a missed deadline) and up on the first success: a
        heartbeat's pings are the job's own verdicts, not samples to confirm."""
        if self.heartbeat_uuid is None:
            self.heartbeat_uuid = uuid.uuid4()
        self.heartbeat_slug = self.heartbeat_slug or None
        self.next_check_at = NEVER
        self.confirm_failures = self.recover_successes = 1

    def _heartbeat_reschedule(self, loaded: dict[str, Any]) -> None:
        """After an edit: never due for the probe dispatch, and a deadline being waited
        for moved to the new schedule."""
        same = Monitor.objects.filter(pk=self.pk)
        same.exclude(next_check_at=NEVER).update(next_check_at=NEVER)
        if all(loaded.get(n, getattr(self, n)) == getattr(self, n) for n in self.HEARTBEAT_FIELDS):
            return
        last = same.filter(heartbeat_deadline_at__isnull=False).values_list(
            "heartbeat_last_ping_at", flat=True
        )
        for last_ping in last:
            if last_ping is not None:
                same.update(heartbeat_deadline_at=self.heartbeat_deadline_after(last_ping))

    def heartbeat_deadline_after(self, last_ping: dt.datetime) -> dt.datetime:
        """When this heartbeat goes down if ``last_ping`` stays its last ping."""
        return heartbeat_deadline(
            last_ping=last_ping,
            period_seconds=self.heartbeat_period_seconds,
            cron=self.heartbeat_cron,
            zone=self.heartbeat_tz,
            grace_seconds=self.heartbeat_grace_seconds,
        )

    def heartbeat_state(self, *, now: dt.datetime | None = None) -> str:
        """The heartbeat's state as people see it: new (never pinged), up, late (past
        its due time, inside the grace), down or paused (``HEARTBEAT_STATES``). Late is
        not stored: it is the stored "up" seen between the due time and the deadline."""
        if self.status == self.Status.PENDING:
            return "new"
        if self.status == self.Status.UP and self.heartbeat_deadline_at is not None:
            grace = dt.timedelta(seconds=self.heartbeat_grace_seconds)
            if (now or timezone.now()) >= self.heartbeat_deadline_at - grace:
                return "late"
        return str(self.status)

    def heartbeat_due_at(self) -> dt.datetime | None:
        """When the next ping is due (None: new, paused, or waiting for no ping)."""
        if self.heartbeat_last_ping_at is None or self.heartbeat_deadline_at is None:
            return None
        return heartbeat_due(
            last_ping=self.heartbeat_last_ping_at,
            period_seconds=self.heartbeat_period_seconds,
            cron=self.heartbeat_cron,
            zone=self.heartbeat_tz,
        )

    def _snapshot(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in (*self.SCHEDULE_FIELDS, *self.HEARTBEAT_FIELDS, "enabled")
            if name in self.__dict__
        }

    def _loaded_values(self) -> dict[str, Any] | None:
        """What this instance held of ``SCHEDULE_FIELDS`` and ``enabled`` when it was
        loaded or last saved; None for one never loaded."""
        if self._loaded is None and self._row is not None:
            wanted = {*self.SCHEDULE_FIELDS, *self.HEARTBEAT_FIELDS, "enabled"}
            names, values = self._row
            self._loaded = {n: v for n, v in zip(names, values, strict=True) if n in wanted}
        return self._loaded

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any) -> Monitor:
        instance = super().from_db(db, field_names, values)
        # Kept as loaded, to tell on save what an edit changed; read only then (lists of
        # monitors load many and save none).
        instance._row = (field_names, values)
        return instance

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            self._clean_target()
        except ValidationError as exc:
            errors.setdefault("url", []).extend(exc.messages)
        for name, message in (
            self._ignored_settings()
            + self._dns_problems()
            + self._ping_problems()
            + self._heartbeat_problems()
        ):
            errors.setdefault(name, []).append(message)
        if (
            self.confirm_window_failures is not None
            and self.confirm_window is not None
            and self.confirm_window_failures > self.confirm_window
        ):
            errors.setdefault("confirm_window_failures", []).append(
                f"At most the {self.confirm_window} checks of the window can fail."
            )
        if problem := self._regions_problem():
            errors.setdefault("regions_confirm", []).append(problem)
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

    def _regions_problem(self) -> str | None:
        if self.regions_confirm is None or not isinstance(self.regions, list):
            return None
        count = len(self.regions) or len(settings.SENTINEL_REGIONS)
        if self.regions_confirm > count:
            return f"At most the monitor's {count} region(s) can confirm a failure."
        return None

    def _ignored_settings(self) -> list[tuple[str, str]]:
        """(field, why) for each setting the probe engine would ignore for this kind of
        check: refused, so that nobody relies on a check that is never made."""
        found: list[tuple[str, str]] = []
        if self.kind in (
            self.Kind.TCP,
            self.Kind.TLS,
            self.Kind.DNS,
            self.Kind.PING,
            self.Kind.HEARTBEAT,
        ):
            kind = self.get_kind_display()
            http_only = {
                "method": self.method != self.Method.GET,
                "headers": bool(self.headers),
                "body": bool(self.body),
                "expected_status_codes": self.expected_status_codes
                not in ("", DEFAULT_STATUS_CODES),
                "keyword": bool(self.keyword),
                "max_body_kib": self.max_body_kib not in (None, v.DEFAULT_PAGE_KIB),
                "json_assertions": bool(self.json_assertions),
            }
            found += [
                (name, f"{kind} monitors send no HTTP request; clear this field.")
                for name, set_ in http_only.items()
                if set_
            ]
        elif self.method == self.Method.HEAD:
            if self.keyword:
                why = "A HEAD request has no body to search; use GET, or clear the keyword."
                found.append(("keyword", why))
            if self.json_assertions:
                why = "A HEAD request has no body to assert on; use GET, or clear the assertions."
                found.append(("json_assertions", why))
        if (
            self.keyword_mode == self.KeywordMode.ABSENT
            and not self.keyword
            and self.kind == self.Kind.HTTP
        ):
            found.append(("keyword_mode", "'Must not appear' needs a keyword to look for."))
        if (
            self.max_body_kib not in (None, v.DEFAULT_PAGE_KIB)
            and not self.keyword
            and not self.json_assertions
            and self.kind == self.Kind.HTTP
        ):
            found.append(
                (
                    "max_body_kib",
                    "The page read limit needs a keyword to look for or JSON assertions.",
                )
            )
        return (
            found
            + self._ignored_tls_settings()
            + self._ignored_dns_settings()
            + self._ignored_ping_settings()
            + self._ignored_heartbeat_settings()
        )

    def _ignored_heartbeat_settings(self) -> list[tuple[str, str]]:
        if self.kind == self.Kind.HEARTBEAT:
            why = "A heartbeat is pinged by your job, never checked; set its period instead."
            probe_only = {
                "interval_seconds": self.interval_seconds not in (None, 60),
                "timeout_seconds": self.timeout_seconds not in (None, 10),
                "connect_to": bool(self.connect_to),
            }
            return [(name, why) for name, set_ in probe_only.items() if set_]
        heartbeat_only = {
            "heartbeat_slug": bool(self.heartbeat_slug),
            "heartbeat_period_seconds": self.heartbeat_period_seconds
            not in (None, v.DEFAULT_HEARTBEAT_PERIOD_SECONDS),
            "heartbeat_cron": bool(self.heartbeat_cron),
            "heartbeat_tz": self.heartbeat_tz not in ("", "UTC"),
            "heartbeat_grace_seconds": self.heartbeat_grace_seconds
            not in (None, v.DEFAULT_HEARTBEAT_GRACE_SECONDS),
        }
        return [
            (name, "Only heartbeat monitors are pinged; clear this field.")
            for name, set_ in heartbeat_only.items()
            if set_
        ]

    def _heartbeat_problems(self) -> list[tuple[str, str]]:
        """(field, why) for a heartbeat schedule that cannot work: a cron expression
        that does not parse or never fires, a slug another of the owner's monitors has."""
        if self.kind != self.Kind.HEARTBEAT:
            return []
        found: list[tuple[str, str]] = []
        if self.heartbeat_cron:
            try:
                v.validate_time_zone(self.heartbeat_tz)
            except ValidationError:
                pass  # the time zone's own error says it
            else:
                problem = cron_problem(self.heartbeat_cron, self.heartbeat_tz)
                if problem:
                    found.append(("heartbeat_cron", problem))
        if self.heartbeat_slug and self.owner_id is not None:
            taken = Monitor.objects.filter(
                owner_id=self.owner_id, heartbeat_slug=self.heartbeat_slug
            )
            if taken.exclude(pk=self.pk).exists():
                found.append(("heartbeat_slug", "Another of your monitors has this slug."))
        return found

    def _ignored_ping_settings(self) -> list[tuple[str, str]]:
        if self.kind == self.Kind.PING:
            if self.connect_to:
                why = "A ping monitor sends to its target's host; put the address there."
                return [("connect_to", why)]
            return []
        ping_only = {
            "ping_count": self.ping_count not in (None, v.DEFAULT_PING_COUNT),
            "ping_max_loss_percent": self.ping_max_loss_percent
            not in (None, v.DEFAULT_PING_MAX_LOSS_PERCENT),
            "ping_max_rtt_ms": self.ping_max_rtt_ms is not None,
        }
        return [
            (name, "Only ping monitors send echo requests; clear this field.")
            for name, set_ in ping_only.items()
            if set_
        ]

    def _ping_problems(self) -> list[tuple[str, str]]:
        """(field, why) when a ping monitor's timeout cannot hold its echo requests."""
        if self.kind != self.Kind.PING or self.ping_count is None or self.timeout_seconds is None:
            return []
        shortest = v.ping_min_timeout(self.ping_count)
        if self.timeout_seconds >= shortest:
            return []
        return [
            (
                "timeout_seconds",
                f"{self.ping_count} echo requests need a timeout of at least {shortest} s "
                f"(0.2 s apart, each waited for at least 0.5 s); send fewer or wait longer.",
            )
        ]

    def _ignored_dns_settings(self) -> list[tuple[str, str]]:
        if self.kind == self.Kind.DNS:
            if self.connect_to:
                why = "A DNS monitor asks its resolver; put its address in 'DNS resolver'."
                return [("connect_to", why)]
            return []
        dns_only = {
            "dns_record_type": self.dns_record_type not in ("", self.DnsRecordType.A),
            "dns_resolver": bool(self.dns_resolver),
            "dns_expected": bool(self.dns_expected),
            "dns_match": self.dns_match not in ("", self.DnsMatch.RESOLVES),
        }
        return [
            (name, "Only DNS monitors look up records; clear this field.")
            for name, set_ in dns_only.items()
            if set_
        ]

    def _dns_problems(self) -> list[tuple[str, str]]:
        """(field, why) for a DNS monitor's expectations that cannot be checked: values
        that are not of the record type, a match mode without values to match, or
        values that 'resolves at all' would not look at."""
        if self.kind != self.Kind.DNS or not isinstance(self.dns_expected, list):
            return []
        found = [
            ("dns_expected", problem)
            for problem in v.dns_expected_problems(self.dns_record_type, self.dns_expected)
        ]
        if self.dns_match == self.DnsMatch.RESOLVES and self.dns_expected:
            found.append(
                (
                    "dns_match",
                    "'Resolves at all' does not compare the answer; choose 'any of', "
                    "'all of' or 'exactly' to check the expected values, or clear them.",
                )
            )
        elif self.dns_match not in ("", self.DnsMatch.RESOLVES) and not self.dns_expected:
            found.append(("dns_expected", "List the values the answer must match."))
        return found

    def _ignored_tls_settings(self) -> list[tuple[str, str]]:
        tls = self.kind == self.Kind.TLS or (
            self.kind == self.Kind.HTTP and (self.url or "").lower().startswith("https://")
        )
        found: list[tuple[str, str]] = []
        if self.connect_to and self.kind == self.Kind.TCP:
            found.append(
                ("connect_to", "A TCP monitor connects to its URL's host; put the address there.")
            )
        if not tls:
            why = "Only https:// and tls:// monitors have a certificate to verify."
            if not self.tls_verify:
                found.append(("tls_verify", why))
            if self.tls_ca_bundle:
                found.append(("tls_ca_bundle", why))
        elif self.tls_ca_bundle and not self.tls_verify:
            found.append(
                ("tls_ca_bundle", "Verification is off, so no CA is consulted; clear one of them.")
            )
        return found

    def _clean_target(self) -> None:
        if self.kind == self.Kind.HTTP:
            v.validate_http_url(self.url)
        elif self.kind in (self.Kind.TCP, self.Kind.TLS):
            v.validate_host_port(self.url, self.kind)
        elif self.kind == self.Kind.DNS:
            v.validate_dns_target(self.url)
        elif self.kind == self.Kind.PING:
            v.validate_ping_target(self.url)
        elif self.kind == self.Kind.HEARTBEAT and self.url:
            raise ValidationError(
                "A heartbeat has no target: your job pings its URL. Leave this empty."
            )

    def json_assertion_texts(self) -> list[str]:
        """Each JSON assertion as a person reads it, e.g. ``status.indicator == "none"``
        (the monitor page)."""
        texts = []
        for item in self.json_assertions or []:
            if isinstance(item, dict):
                value = f" {json.dumps(item['value'])}" if "value" in item else ""
                texts.append(f"{item.get('path', '')} {item.get('op', '')}{value}")
        return texts


def ping_key_new() -> str:
    """A fresh ping key: 128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


class PingKey(models.Model):
    """An owner's ping key: with a heartbeat's slug it makes the readable ping URL
    ``/ping/<key>/<slug>``. Unguessable like a ping UUID; a new key retires the URLs
    made with the old one."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ping_key"
    )
    key = models.CharField(max_length=32, unique=True, default=ping_key_new, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"ping key of {self.owner}"


class Incident(models.Model):
    """One down period of a monitor, from the confirming check to the recovering one."""

    monitor = models.ForeignKey("Monitor", on_delete=models.CASCADE, related_name="incidents")
    started_at = models.DateTimeField(help_text="The check that confirmed the outage.")
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    first_failure_kind = models.CharField(max_length=16, blank=True, default="")
    first_failure_message = models.CharField(max_length=200, blank=True, default="")
    checks_failed = models.PositiveIntegerField(default=0)
    # The regions whose checks of the confirming slot failed, comma-separated (empty for
    # a monitor checked from one region): named in the incident's alerts.
    regions = models.CharField(max_length=200, blank=True, default="")
    # Equal to monitor_id while the incident is open and NULL once closed: a UNIQUE
    # index on it allows one open incident per monitor (NULLs do not collide), which
    # MariaDB cannot say with a partial index. The monitor's row lock in
    # monitors.state makes a second open impossible already; this makes it loud.
    open_monitor_id = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)

    class EndReason(models.TextChoices):
        RECOVERED = "recovered", "recovered"
        PAUSED = "paused", "monitor paused"
        REVISED = "revised", "revised by late results"

    # Why it ended: the recovering check, or the monitor paused while down (no
    # recovery was seen, so no "up again" alert is sent for it), or results that arrived
    # late showed the outage was never confirmed (monitors.state; ended at its start).
    end_reason = models.CharField(max_length=10, choices=EndReason.choices, blank=True, default="")
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
    def region_names(self) -> list[str]:
        """``regions`` as a list (empty for a monitor of the local region alone)."""
        return [name for name in self.regions.split(",") if name]

    @property
    def duration(self) -> dt.timedelta | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


def incidents_end(*, ends: list[tuple[int, dt.datetime]], reason: str) -> int:
    """End the open incident of each ``(monitor id, at)`` at ``at``, with ``reason``
    (``Incident.EndReason``), in one UPDATE ... JOIN; monitors without an open incident
    are left alone. Returns how many incidents ended. Called under the monitors' row
    locks (the live state) or by a pause."""
    return update_from_values(
        table=Incident._meta.db_table,
        columns=("monitor_id", "ended_at", "reason"),
        rows=[(monitor_id, at, reason) for monitor_id, at in ends],
        on="t.open_monitor_id = v.monitor_id",
        assignments="t.ended_at = v.ended_at, t.open_monitor_id = NULL, "
        "t.end_reason = v.reason, "
        "t.duration_seconds = GREATEST(TIMESTAMPDIFF(SECOND, t.started_at, v.ended_at), 0)",
    )
