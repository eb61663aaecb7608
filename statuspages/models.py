"""Status pages: what an owner publishes about some of their monitors.

A page shows only the monitors put on it (``PageMonitor``), under the public name the
owner gave each, and never their URLs, owners or error texts unless the owner turns
``show_urls`` / ``show_errors`` on. Incidents posted on a page (``PageIncident``, with
``PageIncidentUpdate``s) are the owner's words to visitors, separate from the checker's
``monitors.Incident`` (which one action can publish as a post).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.validators import MinLengthValidator
from django.db import models

from alerting.models import MaintenanceWindow
from monitors.models import Incident, Monitor
from projects.models import InProject
from statuspages.validators import validate_domain, validate_slug


def new_key() -> str:
    """An unguessable key (128 random bits, URL-safe): not derived from any id."""
    return secrets.token_urlsafe(16)


class StatusPage(InProject):
    class Theme(models.TextChoices):
        LIGHT = "light", "light"
        DARK = "dark", "dark"

    class Access(models.TextChoices):
        PUBLIC = "public", "public"
        PASSWORD = "password", "private, with a password"
        TOKEN = "token", "private, with an access token"

    # Who created it (NULL once their account is deleted); access follows ``project``.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="status_pages",
    )
    slug = models.SlugField(
        max_length=60,
        unique=True,
        validators=[MinLengthValidator(2), validate_slug],
        help_text="The page's address: /status/<slug>/.",
    )
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True, default="", help_text="Markdown.")
    logo = models.BinaryField(null=True, blank=True, editable=False)
    logo_type = models.CharField(max_length=20, blank=True, default="", editable=False)
    theme = models.CharField(max_length=5, choices=Theme.choices, default=Theme.LIGHT)
    access = models.CharField(max_length=8, choices=Access.choices, default=Access.PUBLIC)
    # A Django password hash (never the password); empty unless access is "password".
    password_hash = models.CharField(max_length=128, blank=True, default="", editable=False)
    access_token = models.CharField(max_length=32, default=new_key, editable=False)
    # The key of the page's own badge (/badge/page/<key>.svg), so a private page's
    # badge can be embedded without its token.
    badge_key = models.CharField(max_length=32, unique=True, default=new_key, editable=False)
    show_urls = models.BooleanField(default=False, help_text="Show each monitor's URL.")
    show_errors = models.BooleanField(
        default=False, help_text="Show the checker's error text of a monitor that is down."
    )
    show_response_times = models.BooleanField(
        default=False, help_text="Show a 24-hour response-time chart beside each monitor."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Moved by every change to the page, its groups, monitors or posts: the page
    # cache's key carries it (statuspages.selectors).
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        indexes = [
            # The owner's page list (dashboard, API).
            models.Index(fields=["owner", "title"], name="statuspage_owner_title_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    def set_password(self, password: str) -> None:
        self.password_hash = make_password(password) if password else ""

    def password_matches(self, password: str) -> bool:
        return bool(self.password_hash) and check_password(password, self.password_hash)

    def touch(self) -> None:
        """Move ``updated_at``: what the page shows has changed."""
        self.save(update_fields=["updated_at"])

    def layout(self) -> list[dict[str, Any]]:
        """Groups in order, each ``{"name", "monitors": [{"monitor": id,
        "display_name"}]}`` (the shape ``statuspages.services.page_layout_set`` takes)."""
        groups: dict[int, dict[str, Any]] = {}
        for group in self.groups.order_by("position", "id"):
            groups[group.pk] = {"name": group.name, "monitors": []}
        for entry in self.entries.order_by("position", "id"):
            groups[entry.group_id]["monitors"].append(
                {"monitor": entry.monitor_id, "display_name": entry.display_name}
            )
        return list(groups.values())

    def domain_names(self) -> list[str]:
        return sorted(self.domains.values_list("domain", flat=True))


class StatusDomain(models.Model):
    """A custom domain of a page, served by matching the request's host."""

    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="domains")
    # Unique: a domain belongs to one page only.
    domain = models.CharField(max_length=253, unique=True, validators=[validate_domain])

    def __str__(self) -> str:
        return self.domain


class PageGroup(models.Model):
    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["page", "position", "id"]

    def __str__(self) -> str:
        return self.name


class PageMonitor(models.Model):
    """A monitor on a page, in a group, under a public name."""

    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="entries")
    group = models.ForeignKey(PageGroup, on_delete=models.CASCADE, related_name="entries")
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="page_entries")
    display_name = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["group__position", "group_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["page", "monitor"], name="pagemonitor_once_per_page")
        ]

    def __str__(self) -> str:
        return self.display_name


class PageIncident(models.Model):
    """An incident as the owner tells it on a page; its timeline is its updates."""

    class Status(models.TextChoices):
        INVESTIGATING = "investigating", "Investigating"
        IDENTIFIED = "identified", "Identified"
        MONITORING = "monitoring", "Monitoring"
        RESOLVED = "resolved", "Resolved"

    class Impact(models.TextChoices):
        NONE = "none", "none"
        MINOR = "minor", "minor"
        MAJOR = "major", "major"
        CRITICAL = "critical", "critical"

    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="incidents")
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=13, choices=Status.choices, default=Status.INVESTIGATING)
    impact = models.CharField(max_length=8, choices=Impact.choices, default=Impact.MINOR)
    monitors = models.ManyToManyField(Monitor, blank=True, related_name="page_incidents")
    # The checker's incident this post was published from, if any.
    source = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="page_posts"
    )
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            # A page's history, newest first (the public page, the feed, the API).
            models.Index(fields=["page", "-started_at"], name="pageincident_page_started_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_active(self) -> bool:
        return self.status != self.Status.RESOLVED

    @property
    def monitor_ids(self) -> list[int]:
        return [monitor.pk for monitor in self.monitors.all()]


class PageIncidentUpdate(models.Model):
    incident = models.ForeignKey(PageIncident, on_delete=models.CASCADE, related_name="updates")
    status = models.CharField(max_length=13, choices=PageIncident.Status.choices)
    body = models.TextField(help_text="Markdown.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.status} at {self.created_at:%Y-%m-%d %H:%M}"


class PageMaintenance(models.Model):
    """A maintenance window shown on a page, with words for its visitors."""

    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="maintenance")
    window = models.ForeignKey(
        MaintenanceWindow, on_delete=models.CASCADE, related_name="page_entries"
    )
    description = models.TextField(blank=True, default="", help_text="Markdown.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["page", "window"], name="pagemaintenance_once")
        ]

    def __str__(self) -> str:
        return f"{self.window} on {self.page}"


class MonitorBadge(models.Model):
    """A monitor's badge key: its badges are served at /badge/<key>/..., a random key,
    so that neither a monitor's id nor a page reveals how to reach them."""

    monitor = models.OneToOneField(Monitor, on_delete=models.CASCADE, related_name="badge")
    key = models.CharField(max_length=32, unique=True, default=new_key)

    def __str__(self) -> str:
        return f"badge of {self.monitor_id}"
