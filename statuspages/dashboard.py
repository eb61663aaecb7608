"""The owner's side of status pages in the dashboard: list, create and edit pages, lay
out their groups and monitors, post incidents and updates, publish a checker
incident. Every page is looked up through the one access rule (``visible_to``):
another owner's page is a 404."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from alerting.models import MaintenanceWindow
from monitors.forms import raise_into
from monitors.models import Incident, Monitor
from monitors.selectors import visible_to
from projects.pages import current_project_id, require_change
from projects.roles import Area
from statuspages.forms import (
    EntryFormSet,
    GroupFormSet,
    IncidentForm,
    StatusPageForm,
    UpdateForm,
    layout_from,
)
from statuspages.models import PageIncident, StatusPage
from statuspages.services import (
    page_domains_set,
    page_incident_post,
    page_incident_publish,
    page_incident_update,
    page_layout_set,
    page_logo_set,
    page_maintenance_hide,
    page_maintenance_show,
)

RECENT_CHECKER_INCIDENTS = 10


def _page(request: HttpRequest, pk: int, *, area: Area = Area.STATUS_PAGES) -> StatusPage:
    """The page if the user sees it (else 404); a POST also needs a role that may change
    ``area`` in its project (else 403)."""
    page = get_object_or_404(visible_to(request.user, StatusPage.objects.all()), pk=pk)
    if request.method == "POST":
        require_change(request, page.project_id, area)
    return page


@login_required
def page_list(request: HttpRequest) -> HttpResponse:
    pages = visible_to(request.user, StatusPage.objects.order_by("title", "id"))
    return render(request, "statuspages/manage_list.html", {"pages": pages})


@login_required
def page_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Create (no ``pk``) or change a page's settings, logo and domains."""
    page = _page(request, pk) if pk else None
    form = StatusPageForm(request.POST or None, request.FILES or None, instance=page)
    if request.method == "POST" and form.is_valid() and _save_page(request, form):
        messages.success(request, f"Saved {form.instance.title}.")
        return redirect("statuspages-manage", pk=form.instance.pk)
    return render(request, "statuspages/manage_form.html", {"form": form, "page": page})


def _save_page(request: HttpRequest, form: StatusPageForm) -> bool:
    try:
        with transaction.atomic():
            page = form.save(commit=False)
            if not page.pk:
                page.owner = request.user
                page.project_id = current_project_id(request)
                require_change(request, page.project_id, Area.STATUS_PAGES)
            if form.cleaned_data.get("password"):
                page.set_password(form.cleaned_data["password"])
            page.save()
            if form.cleaned_data.get("remove_logo"):
                page_logo_set(page=page, data=None)
            elif form.cleaned_data.get("logo_file"):
                page_logo_set(page=page, data=form.cleaned_data["logo_file"])
            page_domains_set(page=page, names=form.domain_list())
    except ValidationError as error:
        raise_into(form, error)
        return False
    return True


@login_required
def page_manage(request: HttpRequest, pk: int) -> HttpResponse:
    """The page's layout, incidents and the checker's recent incidents to publish."""
    page = _page(request, pk)
    monitors = list(Monitor.objects.filter(project_id=page.project_id).order_by("name", "id"))
    layout = page.layout()
    groups = GroupFormSet(
        request.POST or None,
        prefix="groups",
        initial=[{"name": g["name"], "order": i} for i, g in enumerate(layout)],
    )
    initial = [
        {"monitor": m["monitor"], "group": g["name"], "display_name": m["display_name"], "order": i}
        for g in layout
        for i, m in enumerate(g["monitors"])
    ]
    entries = EntryFormSet(
        request.POST or None, prefix="entries", initial=initial, form_kwargs={"monitors": monitors}
    )
    if request.method == "POST" and groups.is_valid() and entries.is_valid():
        try:
            page_layout_set(page=page, layout=layout_from(groups, entries))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Layout saved.")
            return redirect("statuspages-manage", pk=page.pk)
    return render(request, "statuspages/manage_page.html", _manage_context(page, groups, entries))


def _manage_context(page: StatusPage, groups: Any, entries: Any) -> dict[str, Any]:
    on_page = [(e.monitor_id, e.display_name) for e in page.entries.order_by("position")]
    incidents = page.incidents.prefetch_related("updates").order_by("-started_at", "-id")[:20]
    return {
        "page": page,
        "groups": groups,
        "entries": entries,
        "incident_form": IncidentForm(monitors=on_page),
        "incidents": [(i, UpdateForm(initial={"status": i.status})) for i in incidents],
        "windows": MaintenanceWindow.objects.filter(project_id=page.project_id).order_by(
            "-starts_at"
        )[:50],
        "shown": page.maintenance.select_related("window"),
        "checker_incidents": Incident.objects.filter(
            monitor_id__in=[pk for pk, _ in on_page]
        ).select_related("monitor")[:RECENT_CHECKER_INCIDENTS],
    }


@login_required
@require_POST
def incident_post(request: HttpRequest, pk: int) -> HttpResponse:
    page = _page(request, pk, area=Area.INCIDENTS)
    on_page = [(e.monitor_id, e.display_name) for e in page.entries.all()]
    form = IncidentForm(request.POST, monitors=on_page)
    if form.is_valid():
        try:
            page_incident_post(
                page=page,
                title=form.cleaned_data["title"],
                body=form.cleaned_data["body"],
                status=form.cleaned_data["status"],
                impact=form.cleaned_data["impact"],
                monitor_ids=form.cleaned_data["monitors"],
            )
        except ValidationError as error:
            raise_into(form, error)
        else:
            messages.success(request, "Incident posted.")
            return redirect("statuspages-manage", pk=page.pk)
    messages.error(request, f"Not posted: {form.errors.as_text()}")
    return redirect("statuspages-manage", pk=page.pk)


@login_required
@require_POST
def incident_update(request: HttpRequest, pk: int, incident_pk: int) -> HttpResponse:
    page = _page(request, pk, area=Area.INCIDENTS)
    incident = get_object_or_404(PageIncident, page=page, pk=incident_pk)
    form = UpdateForm(request.POST)
    if form.is_valid():
        page_incident_update(
            incident=incident, status=form.cleaned_data["status"], body=form.cleaned_data["body"]
        )
        messages.success(request, "Update posted.")
    else:
        messages.error(request, f"Not posted: {form.errors.as_text()}")
    return redirect("statuspages-manage", pk=page.pk)


@login_required
@require_POST
def maintenance_show(request: HttpRequest, pk: int) -> HttpResponse:
    """Show one of the project's maintenance windows on the page, with a description;
    ``hide`` takes it off."""
    page = _page(request, pk)
    try:
        window_id = int(request.POST.get("window", ""))
    except ValueError:
        messages.error(request, "Choose a maintenance window.")
        return redirect("statuspages-manage", pk=page.pk)
    if request.POST.get("hide"):
        page_maintenance_hide(page=page, window_id=window_id)
    else:
        try:
            page_maintenance_show(
                page=page, window_id=window_id, description=request.POST.get("description", "")
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("statuspages-manage", pk=page.pk)
    messages.success(request, "Maintenance on the page updated.")
    return redirect("statuspages-manage", pk=page.pk)


@login_required
@require_POST
def incident_publish(request: HttpRequest, pk: int, incident_pk: int) -> HttpResponse:
    page = _page(request, pk, area=Area.INCIDENTS)
    source = get_object_or_404(
        Incident.objects.filter(monitor__project_id=page.project_id), pk=incident_pk
    )
    page_incident_publish(page=page, source=source)
    messages.success(request, "Published on the page.")
    return redirect("statuspages-manage", pk=page.pk)
