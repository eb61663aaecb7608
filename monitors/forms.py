"""The dashboard's monitor form: a ModelForm for the fields and widgets; saving goes
through ``monitors.services`` so it refuses what the API and admin refuse."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import slug_re

from monitors.models import Monitor
from monitors.services import MONITOR_EDITABLE_FIELDS, monitor_create, monitor_update


class JSONListField(forms.JSONField):
    """A JSON list in a text box; an empty box is the empty list (the column takes no
    null)."""

    def to_python(self, value: Any) -> Any:
        converted = super().to_python(value)
        return [] if converted is None else converted


class RegionListField(forms.CharField):
    """Region names, comma-separated in a text box; empty for every region."""

    def __init__(self, *, encoder: Any = None, decoder: Any = None, **kwargs: Any) -> None:
        # The model's JSONField hands these over; a text of names needs neither.
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        return [name.strip() for name in (text or "").split(",") if name.strip()]


class KindRows:
    """``rows()``, the fields the dashboard's form template shows; for a form whose
    fields depend on its ``kind``, the page shows a kind's fields only, by CSS on the
    chosen kind, without script."""

    KIND_FIELDS: dict[str, tuple[str, ...]] = {}

    def rows(self) -> list[tuple[forms.BoundField, str]]:
        """Each field with its row's CSS classes: ``kind-field for-<kind>`` per kind it
        is for, ``has-errors`` (shown whatever the kind) when it has errors."""
        rows = []
        for field in self:  # type: ignore[attr-defined]
            kinds = self.KIND_FIELDS.get(field.name)
            classes = ["kind-field", *(f"for-{kind}" for kind in kinds)] if kinds else []
            if field.errors:
                classes.append("has-errors")
            rows.append((field, " ".join(classes)))
        return rows


class MonitorForm(KindRows, forms.ModelForm):
    tags = forms.CharField(
        required=False, help_text="Comma-separated, e.g. shop, production.", max_length=500
    )

    class Meta:
        model = Monitor
        fields = MONITOR_EDITABLE_FIELDS
        widgets = {
            "body": forms.Textarea(attrs={"rows": 3}),
            "dns_expected": forms.Textarea(attrs={"rows": 2}),
            "json_assertions": forms.Textarea(attrs={"rows": 3}),
        }
        field_classes = {
            "dns_expected": JSONListField,
            "json_assertions": JSONListField,
            "regions": RegionListField,
        }

    # Settings a form posted by an older page (or a script) may leave out: they keep
    # the monitor's value, or the default for a new one. One that is posted empty is
    # cleared (a text) or, where empty means nothing (a number, a choice), kept.
    OPTIONAL = (
        "regions",
        "confirm_window",
        "confirm_window_failures",
        "max_body_kib",
        "json_assertions",
        "connect_to",
        "tls_ca_bundle",
        "tls_verify",
        "dns_record_type",
        "dns_resolver",
        "dns_expected",
        "dns_match",
        "ping_count",
        "ping_max_loss_percent",
        "heartbeat_slug",
        "heartbeat_period_seconds",
        "heartbeat_cron",
        "heartbeat_tz",
        "heartbeat_grace_seconds",
    )

    # The kinds of monitor each field is for (the rest are for every kind): the page
    # shows a kind's fields only, by CSS on the chosen kind, so it needs no script.
    KIND_FIELDS = {
        **dict.fromkeys(
            (
                "method",
                "headers",
                "body",
                "expected_status_codes",
                "keyword",
                "keyword_mode",
                "json_assertions",
                "max_body_kib",
            ),
            ("http",),
        ),
        **dict.fromkeys(("connect_to", "tls_verify", "tls_ca_bundle"), ("http", "tls")),
        **dict.fromkeys(("dns_record_type", "dns_resolver", "dns_expected", "dns_match"), ("dns",)),
        # ping_max_rtt_ms is not OPTIONAL: an empty box is "no limit", not "keep it".
        **dict.fromkeys(("ping_count", "ping_max_loss_percent", "ping_max_rtt_ms"), ("ping",)),
        # A heartbeat is pinged, never checked: it has a schedule instead of a target.
        **dict.fromkeys(Monitor.HEARTBEAT_FIELDS, ("heartbeat",)),
        **dict.fromkeys(
            ("url", "interval_seconds", "timeout_seconds", *Monitor.CONFIRMATION_FIELDS),
            tuple(kind.value for kind in Monitor.PROBED_KINDS),
        ),
    }

    # A choice, not a checkbox: an unticked box and a form that leaves the field out
    # post the same thing, and the latter must not turn verification off.
    tls_verify = forms.TypedChoiceField(
        label="TLS certificate",
        choices=[("true", "verify it (recommended)"), ("false", "accept any certificate")],
        coerce=lambda value: value == "true",
        empty_value=None,
        required=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["tags"].initial = ", ".join(t.name for t in self.instance.tags.all())
        for name in self.OPTIONAL:
            self.fields[name].required = False
        self.fields["tls_verify"].initial = "true" if self.instance.tls_verify else "false"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in self.OPTIONAL:
            if name in self.errors:
                continue
            field = self.fields[name]
            omitted = field.widget.value_omitted_from_data(
                self.data, self.files, self.add_prefix(name)
            )
            empty = cleaned.get(name) is None or (
                cleaned.get(name) == "" and isinstance(field, forms.TypedChoiceField)
            )
            if omitted or empty:
                cleaned[name] = getattr(self.instance, name)
        return cleaned

    def clean_tags(self) -> str:
        value: str = self.cleaned_data.get("tags", "")
        for name in value.split(","):
            if name.strip() and not slug_re.match(name.strip()):
                raise ValidationError(
                    f"{name.strip()!r} is not a tag: use letters, digits, - and _."
                )
        return value

    def tag_names(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data.get("tags", "").split(",")]

    def save_through_services(
        self, *, owner: User, project_id: int | None = None
    ) -> Monitor | None:
        """Create (in ``project_id``; None: the owner's personal project) or update; on a
        ValidationError the errors land on the form and nothing is saved (returns None)."""
        fields = {name: self.cleaned_data[name] for name in MONITOR_EDITABLE_FIELDS}
        try:
            if self.instance.pk:
                existing = Monitor.objects.get(pk=self.instance.pk)
                return monitor_update(monitor=existing, tags=self.tag_names(), **fields)
            return monitor_create(
                owner=owner, project_id=project_id, tags=self.tag_names(), **fields
            )
        except ValidationError as exc:
            raise_into(self, exc)
            return None


def raise_into(form: forms.BaseForm, error: ValidationError) -> None:
    """A service's ValidationError onto ``form``: each field's errors on that field,
    errors of fields the form lacks (and errors of no field) as the form's own. For
    every dashboard form that saves through a service."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error)
