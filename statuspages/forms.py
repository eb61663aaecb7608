"""Dashboard forms for status pages: the page's settings, its layout (groups and
monitors, in order) and incident posts and updates. They check the input; the writes
go through ``statuspages.services`` like the API's."""

from __future__ import annotations

from typing import Any

from django import forms

from monitors.models import Monitor
from statuspages.models import PageIncident, StatusPage
from statuspages.validators import logo_type


class StatusPageForm(forms.ModelForm):
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="For a password page; leave empty to keep the current one.",
    )
    logo_file = forms.FileField(
        required=False, label="Logo", help_text="PNG, JPEG, GIF or WebP, at most 256 KiB."
    )
    remove_logo = forms.BooleanField(required=False)
    domains = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Custom domains, one a line (status.example.com); see docs/status-pages.md.",
    )

    class Meta:
        model = StatusPage
        fields = [
            "slug",
            "title",
            "description",
            "theme",
            "access",
            "show_urls",
            "show_errors",
            "show_response_times",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["domains"].initial = "\n".join(self.instance.domain_names())

    def clean_logo_file(self) -> bytes | None:
        upload = self.cleaned_data.get("logo_file")
        if not upload:
            return None
        data = upload.read(300 * 1024)
        logo_type(data)  # raises ValidationError with the reason
        return data

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        has_password = bool(data.get("password")) or bool(self.instance.password_hash)
        if data.get("access") == StatusPage.Access.PASSWORD and not has_password:
            self.add_error("password", "A password page needs a password.")
        return data

    def domain_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data.get("domains", "").splitlines()]


class GroupForm(forms.Form):
    name = forms.CharField(max_length=120)
    order = forms.IntegerField(min_value=0, initial=0)
    DELETE = forms.BooleanField(required=False, label="Remove")


class EntryForm(forms.Form):
    monitor = forms.TypedChoiceField(coerce=int)
    group = forms.CharField(max_length=120, help_text="A group's name.")
    display_name = forms.CharField(max_length=120, required=False, label="Public name")
    order = forms.IntegerField(min_value=0, initial=0)
    DELETE = forms.BooleanField(required=False, label="Remove")

    def __init__(self, *args: Any, monitors: list[Monitor], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["monitor"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", "—")] + [(m.pk, m.name) for m in monitors]


GroupFormSet = forms.formset_factory(GroupForm, extra=1)
EntryFormSet = forms.formset_factory(EntryForm, extra=3)


def layout_from(groups: Any, entries: Any) -> list[dict[str, Any]]:
    """The layout (``services.page_layout_set``'s shape) from valid formsets: groups by
    their order, monitors by theirs; a monitor naming a group not listed starts one."""
    kept = [f.cleaned_data for f in groups if f.cleaned_data and not f.cleaned_data["DELETE"]]
    ordered = sorted(kept, key=lambda g: g["order"])
    layout = {g["name"].strip(): {"name": g["name"].strip(), "monitors": []} for g in ordered}
    rows = [f.cleaned_data for f in entries if f.cleaned_data and not f.cleaned_data["DELETE"]]
    for row in sorted(rows, key=lambda r: r["order"]):
        group = layout.setdefault(
            row["group"].strip(), {"name": row["group"].strip(), "monitors": []}
        )
        group["monitors"].append({"monitor": row["monitor"], "display_name": row["display_name"]})
    return list(layout.values())


class IncidentForm(forms.Form):
    title = forms.CharField(max_length=200)
    status = forms.ChoiceField(choices=PageIncident.Status.choices)
    impact = forms.ChoiceField(choices=PageIncident.Impact.choices, initial="minor")
    monitors = forms.TypedMultipleChoiceField(coerce=int, required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), help_text="Markdown.")

    def __init__(self, *args: Any, monitors: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["monitors"]
        assert isinstance(field, forms.TypedMultipleChoiceField)
        field.choices = monitors


class UpdateForm(forms.Form):
    status = forms.ChoiceField(choices=PageIncident.Status.choices)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Markdown.")
