"""Forms for alerting configuration: the owner's dashboard pages (channels, alert rules,
maintenance windows) and the wall-clock times the admin's window form shares.

They parse the input; every save goes through ``alerting.services.config``, which
refuses what the models' ``clean()`` refuses (as the API and the admin do), and its
errors land on the field they name (``monitors.forms.raise_into``).

Channel secrets (a webhook, Slack or Apprise URL, a signing secret) are taken on write
and never rendered back: their inputs are password boxes that show nothing, and left
empty they keep what is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from alerting.models import AlertRule, MaintenanceWindow, NotificationChannel
from alerting.services.config import (
    alert_rule_create,
    alert_rule_update,
    channel_create,
    channel_update,
    maintenance_window_create,
    maintenance_window_update,
)
from core.time import from_wall_time, time_zone, wall_time, wall_time_kind
from monitors.forms import KindRows, raise_into
from monitors.models import Monitor

STORED = "set — leave empty to keep"


def _secret_input() -> forms.PasswordInput:
    # render_value=False: a re-shown form (after an error) never carries the secret.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class ChannelForm(KindRows, forms.Form):
    """A notification channel: its name, kind and the kind's settings, which become its
    ``config``. Not a ModelForm: the model's errors on ``config`` belong on the box
    that holds the value (``address`` or ``url``)."""

    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=NotificationChannel.Kind.choices)
    address = forms.CharField(required=False, label="Email address", max_length=254)
    url = forms.CharField(
        required=False,
        label="URL",
        widget=_secret_input(),
        help_text="Webhook: http(s) URL it posts to; Slack: the incoming-webhook URL; "
        "Apprise: e.g. tgram://token/chat. Treated as a secret: never shown again.",
    )
    secret = forms.CharField(
        required=False,
        label="Signing secret",
        widget=_secret_input(),
        help_text="Optional: signs each webhook request (docs/webhooks.md).",
    )
    remove_secret = forms.BooleanField(
        required=False, label="Remove the signing secret (stop signing)"
    )

    KIND_FIELDS = {
        "address": ("email",),
        "url": ("webhook", "slack", "apprise"),
        "secret": ("webhook",),
        "remove_secret": ("webhook",),
    }

    def __init__(self, *args: Any, channel: NotificationChannel | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.channel = channel
        if channel is None:
            self.fields.pop("remove_secret")
            return
        self.initial.update(name=channel.name, kind=channel.kind)
        config = channel.config if isinstance(channel.config, dict) else {}
        if channel.kind == NotificationChannel.Kind.EMAIL:
            self.initial["address"] = config.get("address", "")
        if config.get("url"):
            self.fields["url"].help_text = f"{channel.target} ({STORED})."
        if channel.has_secret:
            self.fields["secret"].help_text = f"{STORED}."
        else:
            self.fields.pop("remove_secret")

    def config(self) -> dict[str, str]:
        """The channel's config from the cleaned input: what was typed, else (same kind
        only) what is stored. A change of kind starts from nothing."""
        data = self.cleaned_data
        kind = data["kind"]
        stored: dict[str, Any] = {}
        if self.channel is not None and self.channel.kind == kind:
            stored = self.channel.config if isinstance(self.channel.config, dict) else {}
        if kind == NotificationChannel.Kind.EMAIL:
            return {"address": data["address"].strip()}
        config = {"url": data["url"].strip() or stored.get("url", "")}
        secret = "" if data.get("remove_secret") else data["secret"] or stored.get("secret", "")
        if kind == NotificationChannel.Kind.WEBHOOK and secret:
            config["secret"] = secret
        return config

    def save_through_services(
        self, *, owner: User, project_id: int | None = None
    ) -> NotificationChannel | None:
        """Create (by ``owner``, in ``project_id``; None: their personal project) or
        update the channel; on a ValidationError the errors land on the form and nothing
        is saved (returns None)."""
        fields = {"name": self.cleaned_data["name"], "kind": self.cleaned_data["kind"]}
        try:
            if self.channel is None:
                return channel_create(
                    owner=owner, project_id=project_id, config=self.config(), **fields
                )
            return channel_update(channel=self.channel, config=self.config(), **fields)
        except ValidationError as exc:
            raise_into(self, self._config_errors_on_their_box(exc))
            return None

    def _config_errors_on_their_box(self, error: ValidationError) -> ValidationError:
        if not hasattr(error, "error_dict") or "config" not in error.error_dict:
            return error
        box = "address" if self.cleaned_data["kind"] == NotificationChannel.Kind.EMAIL else "url"
        errors = dict(error.error_dict)
        errors[box] = errors.pop("config")
        return ValidationError(errors)


class AlertRuleForm(KindRows, forms.ModelForm):
    """A rule of one monitor (the instance's), alerting through ``channels``: the
    channels the user may see (the service refuses any that are not the monitor
    owner's)."""

    class Meta:
        model = AlertRule
        fields = (
            "kind",
            "threshold",
            "consecutive_checks",
            "window_minutes",
            "channels",
            "enabled",
        )
        widgets = {"channels": forms.CheckboxSelectMultiple}

    KIND_FIELDS = {"consecutive_checks": ("latency",), "window_minutes": ("latency_p95",)}

    def __init__(self, *args: Any, channels: QuerySet[NotificationChannel], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["channels"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = channels
        field.help_text = "Where its alerts go."

    def save_through_services(self) -> AlertRule | None:
        """Create or update the rule; on a ValidationError the errors land on the form
        and nothing is saved (returns None)."""
        data = dict(self.cleaned_data)
        channels = list(data.pop("channels"))
        try:
            if self.instance.pk is None:
                return alert_rule_create(monitor=self.instance.monitor, channels=channels, **data)
            return alert_rule_update(rule=self.instance, channels=channels, **data)
        except ValidationError as exc:
            raise_into(self, exc)
            return None


class WallClockTimesForm(forms.ModelForm):
    """A maintenance window's times, entered and shown on its own clocks
    (``time_zone``). Subclasses declare the three fields so that they clean to naive
    wall-clock datetimes (the admin's split boxes, the dashboard's one box); this reads
    them in the window's zone. A time the clocks skip is refused on its field; an
    ambiguous one (the clocks go back over it) is its first occurrence."""

    WALL_CLOCK_FIELDS = ("starts_at", "ends_at", "repeat_until")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zone = self.instance.zone
        for name in self.WALL_CLOCK_FIELDS:
            value = self.initial.get(name)
            if isinstance(value, dt.datetime) and timezone.is_aware(value):
                self.initial[name] = wall_time(value, zone)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        try:
            zone = time_zone(cleaned.get("time_zone") or "")
        except ValueError:
            zone = None  # the model's clean() puts the error on time_zone
        for name in self.WALL_CLOCK_FIELDS:
            wall = cleaned.get(name)
            if wall is None:
                continue
            if zone is None:
                cleaned[name] = wall.replace(tzinfo=dt.UTC)  # never saved: the form is invalid
            elif wall_time_kind(wall, zone) == "skipped":
                self.add_error(
                    name,
                    f"{wall:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks jump "
                    "over it that night.",
                )
            else:
                cleaned[name] = from_wall_time(wall, zone)
        return cleaned


class WallClockField(forms.DateTimeField):
    """A date and time in one box (``datetime-local``), as a clock shows them: naive, so
    that ``WallClockTimesForm`` reads them in the window's zone (Django's own field
    would read them in UTC, the site's ``TIME_ZONE``)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def to_python(self, value: Any) -> dt.datetime | None:
        aware = super().to_python(value)  # UTC, since TIME_ZONE is UTC
        return None if aware is None else timezone.make_naive(aware, dt.UTC)


class MaintenanceWindowForm(KindRows, WallClockTimesForm):
    """A window over some of the monitors the user may see, and the owner's monitors
    with some tags."""

    starts_at = WallClockField(help_text="In the window's time zone. Weekly: the first one.")
    ends_at = WallClockField(help_text="In the window's time zone.")
    repeat_until = WallClockField(required=False, help_text="In the window's time zone.")
    tags = forms.CharField(
        required=False,
        max_length=500,
        help_text="Comma-separated: the window covers your monitors with these tags too.",
    )

    class Meta:
        model = MaintenanceWindow
        fields = (
            "name",
            "time_zone",
            "starts_at",
            "ends_at",
            "repeat",
            "repeat_until",
            "monitors",
            "tags",
        )
        widgets = {"monitors": forms.SelectMultiple(attrs={"size": 10})}

    def __init__(self, *args: Any, monitors: QuerySet[Monitor], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["monitors"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = monitors
        field.help_text = "Hold down Ctrl (⌘ on a Mac) to choose more than one."
        if self.instance.pk:
            self.initial["tags"] = ", ".join(t.name for t in self.instance.tags.all())

    def save_through_services(
        self, *, owner: User, project_id: int | None = None
    ) -> MaintenanceWindow | None:
        """Create (by ``owner``, in ``project_id``; None: their personal project) or
        update the window; on a ValidationError the errors land on the form and nothing
        is saved (returns None)."""
        data = dict(self.cleaned_data)
        monitors = list(data.pop("monitors"))
        tags = [name.strip() for name in data.pop("tags").split(",") if name.strip()]
        try:
            if self.instance.pk is None:
                return maintenance_window_create(
                    owner=owner, project_id=project_id, monitors=monitors, tags=tags, **data
                )
            return maintenance_window_update(
                window=self.instance, monitors=monitors, tags=tags, **data
            )
        except ValidationError as exc:
            raise_into(self, exc)
            return None
