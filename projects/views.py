"""The dashboard's project pages: the list and the switcher, one project's members,
invitations and API keys, and the page that accepts an invitation.

Every page starts from ``visible_to`` (another project is a 404); each write checks
the role (403) as the API does. A new key's secret is rendered into the answer to its
creation only, never stored in the session or shown again.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from projects.forms import ApiKeyForm, InviteForm, ProjectForm, ProjectSettingsForm, RoleForm
from projects.models import ApiKey, Membership, Project
from projects.pages import (
    current_project_id,
    current_project_set,
    require_change,
    two_factor_first,
)
from projects.roles import Area, Role, role_may_delete_project, role_may_grant
from projects.selectors import projects_needing_2fa, projects_visible_to, role_of, roles_of
from projects.services import (
    InvitationError,
    ProjectRuleError,
    api_key_create,
    api_key_revoke,
    invitation_accept,
    invitation_create,
    member_remove,
    member_set_role,
    project_create,
    project_delete,
)


def _project(request: HttpRequest, pk: int) -> Project:
    return get_object_or_404(projects_visible_to(request.user), pk=pk)


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    """The user's projects, the one new objects go to, and a form for a new one."""
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = project_create(name=form.cleaned_data["name"], owner=request.user)  # type: ignore[arg-type]
        messages.success(request, f"Created {project.name}.")
        return redirect("project", pk=project.pk)
    roles = roles_of(request.user)
    projects = [(p, roles.get(p.pk)) for p in projects_visible_to(request.user)]
    context = {
        "projects": projects,
        "form": form,
        "current": current_project_id(request),
        "needing_2fa": projects_needing_2fa(request.user),
    }
    return render(request, "projects/list.html", context)


@login_required
@require_POST
def project_switch(request: HttpRequest) -> HttpResponse:
    """Choose the project new monitors and status pages are created in."""
    chosen = request.POST.get("project", "")
    if not chosen.isdigit() or not current_project_set(request, int(chosen)):
        messages.error(request, "No such project.")
    return redirect(request.POST.get("next") or "projects")


@login_required
def project_detail(request: HttpRequest, pk: int, *, created: Any = None) -> HttpResponse:
    """Members (with their roles), pending invitations and API keys of one project."""
    if projects_needing_2fa(request.user).filter(pk=pk).exists():
        return two_factor_first(request)  # type: ignore[return-value]
    project = _project(request, pk)
    role = role_of(request.user, project.pk)
    may_manage = role in (Role.OWNER, Role.ADMIN)
    context = {
        "project": project,
        "role": role,
        "may_manage": may_manage,
        "may_delete": role_may_delete_project(role) and project.personal_of_id is None,
        "members": project.memberships.select_related("user").order_by("user__username"),
        "invitations": project.invitations.filter(accepted_at=None).order_by("-created_at"),
        "keys": project.api_keys.order_by("-created_at"),
        "roles": Role.choices,
        "invite_form": InviteForm(),
        "key_form": ApiKeyForm(),
        "settings_form": ProjectSettingsForm(
            initial={"name": project.name, "require_2fa": project.require_2fa}
        ),
        "created": created,
    }
    return render(request, "projects/detail.html", context)


@login_required
@require_POST
def project_settings(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    require_change(request, project.pk, Area.PROJECT)
    form = ProjectSettingsForm(request.POST)
    if form.is_valid():
        project.name = form.cleaned_data["name"]
        project.require_2fa = form.cleaned_data["require_2fa"]
        project.save(update_fields=["name", "require_2fa"])
        messages.success(request, "Saved.")
    return redirect("project", pk=project.pk)


@login_required
@require_POST
def project_remove(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    if not role_may_delete_project(role_of(request.user, project.pk)):
        raise PermissionDenied("Only an owner may delete a project.")
    try:
        project_delete(project=project)
    except ProjectRuleError as exc:
        messages.error(request, exc.messages[0])
        return redirect("project", pk=project.pk)
    messages.success(request, f"Deleted {project.name} and everything in it.")
    return redirect("projects")


def _membership(request: HttpRequest, pk: int, member_pk: int) -> Membership:
    project = _project(request, pk)
    membership = get_object_or_404(Membership, project=project, pk=member_pk)
    require_change(request, project.pk, Area.MEMBERS)
    return membership


def _may_grant(request: HttpRequest, project_id: int, *, old: str | None, new: str | None) -> None:
    if not role_may_grant(role_of(request.user, project_id), old=old, new=new):
        raise PermissionDenied("Only an owner may make or change owners.")


@login_required
@require_POST
def member_role(request: HttpRequest, pk: int, member_pk: int) -> HttpResponse:
    membership = _membership(request, pk, member_pk)
    form = RoleForm(request.POST)
    if form.is_valid():
        role = form.cleaned_data["role"]
        _may_grant(request, membership.project_id, old=membership.role, new=role)
        try:
            member_set_role(membership=membership, role=role)
        except ProjectRuleError as exc:
            messages.error(request, exc.messages[0])
        else:
            messages.success(request, f"{membership.user} is now {membership.get_role_display()}.")
    return redirect("project", pk=pk)


@login_required
@require_POST
def member_delete(request: HttpRequest, pk: int, member_pk: int) -> HttpResponse:
    membership = _membership(request, pk, member_pk)
    _may_grant(request, membership.project_id, old=membership.role, new=None)
    try:
        member_remove(membership=membership)
    except ProjectRuleError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"Removed {membership.user}.")
    return redirect("project", pk=pk)


@login_required
@require_POST
def invite(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    require_change(request, project.pk, Area.MEMBERS)
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not invited: {form.errors.as_text()}")
        return redirect("project", pk=pk)
    _may_grant(request, project.pk, old=None, new=form.cleaned_data["role"])
    accept = reverse("project-invitation-accept", args=["TOKEN"])
    invitation_create(
        project=project,
        email=form.cleaned_data["email"],
        role=form.cleaned_data["role"],
        invited_by=request.user,  # type: ignore[arg-type]
        accept_url=request.build_absolute_uri(accept).replace("TOKEN", "{token}"),
    )
    messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
    return redirect("project", pk=pk)


@login_required
@require_POST
def key_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a key and show its secret in this answer, once."""
    project = _project(request, pk)
    require_change(request, project.pk, Area.KEYS)
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"No key made: {form.errors.as_text()}")
        return redirect("project", pk=pk)
    key, secret = api_key_create(
        project=project,
        name=form.cleaned_data["name"],
        read_only=form.cleaned_data["read_only"],
        created_by=request.user,  # type: ignore[arg-type]
    )
    response = project_detail(request, pk, created={"key": key, "secret": secret})
    response["Cache-Control"] = "no-store"  # the secret must not stay in a cache
    return response


@login_required
@require_POST
def key_revoke(request: HttpRequest, pk: int, key_pk: int) -> HttpResponse:
    project = _project(request, pk)
    key = get_object_or_404(ApiKey, project=project, pk=key_pk)
    require_change(request, project.pk, Area.KEYS)
    api_key_revoke(key=key)
    messages.success(request, f"Revoked {key.name}; it stops working at once.")
    return redirect("project", pk=pk)


@login_required
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Accept an invitation (GET shows it, POST accepts); a link that is expired, used
    or unknown gets a page that says which."""
    if request.method != "POST":
        return render(request, "projects/invitation.html", {"token": token})
    try:
        membership = invitation_accept(token=token, user=request.user)  # type: ignore[arg-type]
    except InvitationError as exc:
        return render(request, "projects/invitation.html", {"error": str(exc)}, status=410)
    messages.success(request, f"You are now a member of {membership.project.name}.")
    return redirect("project", pk=membership.project_id)
