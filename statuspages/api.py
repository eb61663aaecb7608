"""The status page API: pages (with their layout and domains), their incidents and
updates, publishing a checker incident, and monitors' badge keys.

Every queryset starts from the one access rule (``monitors.selectors.visible_to``):
another owner's page or incident is a 404, and the services refuse a monitor the
owner may not see, naming the field.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from monitors.models import Incident
from monitors.selectors import monitors_visible_to, visible_to
from projects.api.fields import ProjectField
from projects.api.permissions import InProjectMixin
from projects.roles import Area
from statuspages.models import PageIncident, PageIncidentUpdate, StatusPage
from statuspages.services import (
    monitor_badge_key,
    page_domains_set,
    page_incident_post,
    page_incident_publish,
    page_incident_update,
    page_layout_set,
    page_maintenance_hide,
    page_maintenance_show,
)


def _drf(error: DjangoValidationError) -> ValidationError:
    return ValidationError(error.message_dict if hasattr(error, "error_dict") else error.messages)


class PageMonitorSerializer(serializers.Serializer[Any]):
    monitor = serializers.IntegerField(help_text="The monitor's id (one of yours).")
    display_name = serializers.CharField(
        max_length=120, required=False, allow_blank=True, help_text="Its public name."
    )


class PageGroupSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=120)
    monitors = PageMonitorSerializer(many=True)


class StatusPageSerializer(serializers.ModelSerializer[StatusPage]):
    groups = PageGroupSerializer(
        many=True,
        source="layout",
        required=False,
        help_text="The layout, in order; replaced whole.",
    )
    domains = serializers.ListField(
        child=serializers.CharField(max_length=253),
        source="domain_names",
        required=False,
        help_text="Custom domains, each served by matching the request's host.",
    )
    password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, help_text="For access=password."
    )
    url = serializers.SerializerMethodField()
    project = ProjectField()

    class Meta:
        model = StatusPage
        fields = [
            "id",
            "project",
            "slug",
            "title",
            "description",
            "theme",
            "access",
            "password",
            "access_token",
            "badge_key",
            "show_urls",
            "show_errors",
            "show_response_times",
            "groups",
            "domains",
            "url",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["access_token", "badge_key", "created_at", "updated_at"]

    def get_url(self, page: StatusPage) -> str:
        return reverse("statuspage", args=[page.slug])

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        access = attrs.get("access", getattr(self.instance, "access", StatusPage.Access.PUBLIC))
        has_password = bool(attrs.get("password")) or bool(
            getattr(self.instance, "password_hash", "")
        )
        if access == StatusPage.Access.PASSWORD and not has_password:
            raise ValidationError({"password": "A password page needs a password."})
        return attrs

    @transaction.atomic
    def save(self, **kwargs: Any) -> StatusPage:
        layout = self.validated_data.pop("layout", None)
        names = self.validated_data.pop("domain_names", None)
        password = self.validated_data.pop("password", None)
        page = super().save(**kwargs)
        try:
            if password is not None:
                page.set_password(password)
                page.save(update_fields=["password_hash", "updated_at"])
            if layout is not None:
                page_layout_set(page=page, layout=layout)
            if names is not None:
                page_domains_set(page=page, names=names)
        except DjangoValidationError as error:
            raise _drf(error) from error
        return page


class UpdateSerializer(serializers.ModelSerializer[PageIncidentUpdate]):
    class Meta:
        model = PageIncidentUpdate
        fields = ["id", "status", "body", "created_at"]
        read_only_fields = ["id", "created_at"]


class PageIncidentSerializer(serializers.ModelSerializer[PageIncident]):
    body = serializers.CharField(write_only=True, help_text="The first update (Markdown).")
    updates = UpdateSerializer(many=True, read_only=True)
    monitors = serializers.ListField(
        child=serializers.IntegerField(), source="monitor_ids", required=False
    )

    class Meta:
        model = PageIncident
        fields = [
            "id",
            "page",
            "title",
            "status",
            "impact",
            "monitors",
            "body",
            "source",
            "started_at",
            "resolved_at",
            "updates",
        ]
        read_only_fields = ["id", "page", "source", "started_at", "resolved_at"]


class MaintenanceSerializer(serializers.Serializer[Any]):
    window = serializers.IntegerField(help_text="The id of a maintenance window of yours.")
    description = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Markdown, for visitors."
    )
    shown = serializers.BooleanField(default=True, help_text="false: take it off the page.")


class PublishSerializer(serializers.Serializer[Any]):
    incident = serializers.IntegerField(help_text="The id of a checker incident of yours.")


@extend_schema_view(
    list=extend_schema(summary="List your status pages"),
    create=extend_schema(summary="Create a status page (layout and domains included)"),
    retrieve=extend_schema(summary="Get a status page"),
    partial_update=extend_schema(summary="Change a status page (a layout replaces the old)"),
    destroy=extend_schema(summary="Delete a status page"),
)
class StatusPageViewSet(InProjectMixin, viewsets.ModelViewSet[StatusPage]):
    serializer_class = StatusPageSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @property
    def project_area(self) -> Area:  # type: ignore[override]
        # Posting incidents is a member's work; the page itself an admin's.
        return Area.INCIDENTS if self.action in ("incidents", "publish") else Area.STATUS_PAGES

    def get_queryset(self) -> QuerySet[StatusPage]:
        return visible_to(self.request.user, StatusPage.objects.order_by("id"))

    def creation_fields(self, project_id: int) -> dict[str, Any]:
        return {"project_id": project_id, "owner": self.request.user}

    @extend_schema(
        summary="Post an incident on the page",
        request=PageIncidentSerializer,
        responses={201: PageIncidentSerializer},
    )
    @action(detail=True, methods=["post"])
    def incidents(self, request: Request, pk: str | None = None) -> Response:
        page = self.get_object()
        given = PageIncidentSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            incident = page_incident_post(
                page=page,
                title=data["title"],
                body=data["body"],
                status=data.get("status", PageIncident.Status.INVESTIGATING),
                impact=data.get("impact", PageIncident.Impact.MINOR),
                monitor_ids=data.get("monitor_ids", []),
            )
        except DjangoValidationError as error:
            raise _drf(error) from error
        return Response(PageIncidentSerializer(incident).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Show a maintenance window on the page (or take it off)",
        request=MaintenanceSerializer,
        responses={204: None},
    )
    @action(detail=True, methods=["post"])
    def maintenance(self, request: Request, pk: str | None = None) -> Response:
        page = self.get_object()
        given = MaintenanceSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            if data["shown"]:
                page_maintenance_show(
                    page=page, window_id=data["window"], description=data["description"]
                )
            else:
                page_maintenance_hide(page=page, window_id=data["window"])
        except DjangoValidationError as error:
            raise _drf(error) from error
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Publish an incident the checker opened, in one action",
        request=PublishSerializer,
        responses={201: PageIncidentSerializer},
    )
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        page = self.get_object()
        given = PublishSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        source = (
            Incident.objects.filter(monitor__in=monitors_visible_to(request.user))
            .filter(pk=given.validated_data["incident"])
            .first()
        )
        if source is None:
            raise ValidationError({"incident": "No such incident."})
        try:
            incident = page_incident_publish(page=page, source=source)
        except DjangoValidationError as error:
            raise _drf(error) from error
        return Response(PageIncidentSerializer(incident).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="List the incidents of your status pages"),
    retrieve=extend_schema(summary="Get a status page incident with its timeline"),
    partial_update=extend_schema(summary="Change an incident's title or impact"),
    destroy=extend_schema(summary="Delete a status page incident"),
)
class PageIncidentViewSet(
    InProjectMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[PageIncident],
):
    serializer_class = PageIncidentSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    project_area = Area.INCIDENTS

    def project_id_of(self, obj: PageIncident) -> int:
        return obj.page.project_id

    def get_queryset(self) -> QuerySet[PageIncident]:
        incidents = PageIncident.objects.prefetch_related("updates", "monitors").order_by("-id")
        return visible_to(self.request.user, incidents, project="page__project")

    def perform_update(self, serializer: Any) -> None:
        for field in ("body", "monitor_ids", "status"):
            serializer.validated_data.pop(field, None)  # the timeline moves by updates
        incident = serializer.save()
        incident.page.touch()

    @extend_schema(
        summary="Add a timestamped update (its status becomes the incident's)",
        request=UpdateSerializer,
        responses={201: UpdateSerializer},
    )
    @action(detail=True, methods=["post"])
    def updates(self, request: Request, pk: str | None = None) -> Response:
        incident = self.get_object()
        given = UpdateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            update = page_incident_update(
                incident=incident,
                status=given.validated_data["status"],
                body=given.validated_data["body"],
            )
        except DjangoValidationError as error:
            raise _drf(error) from error
        return Response(UpdateSerializer(update).data, status=status.HTTP_201_CREATED)


class BadgeSerializer(serializers.Serializer[Any]):
    monitor = serializers.IntegerField()
    key = serializers.CharField()
    status = serializers.CharField(help_text="The status badge's path.")
    uptime = serializers.CharField(
        help_text="The uptime badge's path (add ?window=24h|7d|30d|90d)."
    )
    latency = serializers.CharField(help_text="The latency badge's path.")


@extend_schema_view(retrieve=extend_schema(summary="A monitor's badge key and badge paths"))
class BadgeViewSet(viewsets.GenericViewSet[Any]):
    serializer_class = BadgeSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return monitors_visible_to(self.request.user)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        monitor = self.get_object()
        key = monitor_badge_key(monitor=monitor)
        paths = {
            kind: reverse("monitor-badge", args=[key, kind])
            for kind in ("status", "uptime", "latency")
        }
        return Response(BadgeSerializer({"monitor": monitor.pk, "key": key, **paths}).data)
