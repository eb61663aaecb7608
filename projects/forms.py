"""The dashboard's forms for projects, members, invitations and keys."""

from __future__ import annotations

from django import forms

from projects.roles import Role


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=100)


class ProjectSettingsForm(forms.Form):
    name = forms.CharField(max_length=100)
    require_2fa = forms.BooleanField(
        required=False,
        label="Require two-factor sign-in",
        help_text="Members signed in without a code are sent to set it up first.",
    )


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    read_only = forms.BooleanField(required=False, initial=True, label="Read-only")
