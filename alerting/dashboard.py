"""The owner's alerting pages in the dashboard: notification channels (with a test send),
each monitor's alert rules and maintenance windows, so that nobody needs the operators'
admin for them.

Every object is looked up through the one access rule (``visible_to``): a channel,
rule, window or monitor of a project the user is not in is a 404, a change their role
there does not allow a 403 (``projects.pages.require_change``), and the choices a form
offers (channels of a rule, monitors of a window) are those of the object's project.
New channels and windows go to the project chosen in the project switcher. Views are thin:
the forms save through ``alerting.services.config`` and a test send is the API's
``channel_send_test``. Changes are POSTs (CSRF-checked); a deletion asks first.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from alerting.forms import AlertRuleForm, ChannelForm, MaintenanceWindowForm
from alerting.models import AlertRule, MaintenanceWindow, Notification, NotificationChannel
from alerting.selectors import period_text
from alerting.services import channel_send_test
from monitors.selectors import monitors_visible_to, visible_to
from projects.pages import current_project_id, require_change
from projects.roles import Area


def _channels(request: HttpRequest) -> QuerySet[NotificationChannel]:
    return visible_to(request.user, NotificationChannel.objects.order_by("name", "id"))


def _rules(request: HttpRequest) -> QuerySet[AlertRule]:
    rules = AlertRule.objects.select_related("monitor")
    return visible_to(request.user, rules, project="monitor__project")


def _windows(request: HttpRequest) -> QuerySet[MaintenanceWindow]:
    return visible_to(request.user, MaintenanceWindow.objects.order_by("starts_at", "id"))


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # login_required
    return request.user


def _form_page(request: HttpRequest, form: Any, *, title: str, cancel: str) -> HttpResponse:
    return render(request, "alerting/form.html", {"form": form, "title": title, "cancel": cancel})


def _delete_page(
    request: HttpRequest, obj: Model, *, what: str, back: str, project_id: int, area: Area
) -> HttpResponse:
    """GET: ask; POST: delete ``obj`` (if the role allows) and go ``back``."""
    if request.method == "POST":
        require_change(request, project_id, area)
        obj.delete()
        messages.success(request, f"Deleted {what}.")
        return redirect(back)
    return render(request, "alerting/delete.html", {"what": what, "cancel": back})


# --- channels ---------------------------------------------------------------------------


@login_required
def channel_list(request: HttpRequest) -> HttpResponse:
    channels = _channels(request).select_related("health")
    return render(request, "alerting/channels.html", {"channels": channels})


@login_required
def channel_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Create (no ``pk``) or change a channel; its secrets are kept when left empty."""
    channel = get_object_or_404(_channels(request), pk=pk) if pk else None
    project_id = channel.project_id if channel else current_project_id(request)
    if request.method == "POST":
        require_change(request, project_id, Area.CHANNELS)
    form = ChannelForm(request.POST or None, channel=channel)
    if request.method == "POST" and form.is_valid():
        saved = form.save_through_services(owner=_user(request), project_id=project_id)
        if saved is not None:
            messages.success(request, f"Saved channel {saved.name}.")
            return redirect("alerting-channels")
    title = f"Edit channel {channel.name}" if channel else "New notification channel"
    return _form_page(request, form, title=title, cancel=reverse("alerting-channels"))


@login_required
def channel_delete(request: HttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(_channels(request), pk=pk)
    what = f"channel {channel.name} (its rules stop alerting through it)"
    back = reverse("alerting-channels")
    return _delete_page(
        request, channel, what=what, back=back, project_id=channel.project_id, area=Area.CHANNELS
    )


@login_required
@require_POST
def channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a test notification through the channel now, and say whether it went."""
    channel = get_object_or_404(_channels(request), pk=pk)
    require_change(request, channel.project_id, Area.CHANNELS)
    notification = channel_send_test(channel=channel)
    if notification.status == Notification.Status.SENT:
        messages.success(request, f"Test notification sent to {channel.name}.")
    else:
        # Delivery masks the channel's secrets in its errors; masked again for rows
        # stored before it did (as the API's test answer does).
        error = channel.redact(notification.error) or notification.status
        messages.error(request, f"Test notification to {channel.name} failed: {error}")
    return redirect("alerting-channels")


# --- alert rules ------------------------------------------------------------------------


@login_required
def rule_list(request: HttpRequest, monitor_pk: int) -> HttpResponse:
    """A monitor's alert rules and the channels each alerts through."""
    monitor = get_object_or_404(monitors_visible_to(request.user), pk=monitor_pk)
    rules = visible_to(request.user, monitor.alert_rules.all(), project="monitor__project")
    context = {
        "monitor": monitor,
        "rules": rules.prefetch_related("channels"),
        "has_channels": _channels(request).filter(project_id=monitor.project_id).exists(),
    }
    return render(request, "alerting/rules.html", context)


@login_required
def rule_edit(
    request: HttpRequest, monitor_pk: int | None = None, pk: int | None = None
) -> HttpResponse:
    """Create a rule of a monitor (``monitor_pk``) or change one (``pk``)."""
    if pk is not None:
        rule = get_object_or_404(_rules(request), pk=pk)
    else:
        monitor = get_object_or_404(monitors_visible_to(request.user), pk=monitor_pk)
        rule = AlertRule(monitor=monitor)
    if request.method == "POST":
        require_change(request, rule.monitor.project_id, Area.RULES)
    channels = _channels(request).filter(project_id=rule.monitor.project_id)
    form = AlertRuleForm(request.POST or None, instance=rule, channels=channels)
    back = reverse("alerting-rules", args=[rule.monitor_id])
    if request.method == "POST" and form.is_valid() and form.save_through_services():
        messages.success(request, "Saved the alert rule.")
        return redirect(back)
    title = f"{'Edit the' if rule.pk else 'New'} alert rule of {rule.monitor.name}"
    return _form_page(request, form, title=title, cancel=back)


@login_required
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(_rules(request), pk=pk)
    what = f"the rule “{rule}” of {rule.monitor.name}"
    back = reverse("alerting-rules", args=[rule.monitor_id])
    return _delete_page(
        request, rule, what=what, back=back, project_id=rule.monitor.project_id, area=Area.RULES
    )


# --- maintenance windows ----------------------------------------------------------------


@login_required
def window_list(request: HttpRequest) -> HttpResponse:
    """The windows, each with its next (or current) period on its own clocks."""
    now = timezone.now()
    rows = []
    for window in _windows(request).prefetch_related("monitors", "tags"):
        period = window.next_period(now)
        rows.append(
            {
                "window": window,
                "first": period_text(window.starts_at, window.ends_at, window.zone),
                "next": period and period_text(*period, window.zone),
                "active": period is not None and period[0] <= now,
            }
        )
    return render(request, "alerting/windows.html", {"rows": rows})


@login_required
def window_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Create (no ``pk``) or change a window; times are on the window's clocks."""
    window = get_object_or_404(_windows(request), pk=pk) if pk else None
    project_id = window.project_id if window else current_project_id(request)
    if request.method == "POST":
        require_change(request, project_id, Area.WINDOWS)
    monitors = monitors_visible_to(request.user).filter(project_id=project_id)
    form = MaintenanceWindowForm(
        request.POST or None, instance=window, monitors=monitors.order_by("name", "id")
    )
    if request.method == "POST" and form.is_valid():
        saved = form.save_through_services(owner=_user(request), project_id=project_id)
        if saved is not None:
            messages.success(request, f"Saved maintenance window {saved.name}.")
            return redirect("alerting-windows")
    title = f"Edit maintenance window {window.name}" if window else "New maintenance window"
    return _form_page(request, form, title=title, cancel=reverse("alerting-windows"))


@login_required
def window_delete(request: HttpRequest, pk: int) -> HttpResponse:
    window = get_object_or_404(_windows(request), pk=pk)
    what = f"maintenance window {window.name}"
    back = reverse("alerting-windows")
    return _delete_page(
        request, window, what=what, back=back, project_id=window.project_id, area=Area.WINDOWS
    )
