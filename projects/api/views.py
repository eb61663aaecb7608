"""API views of projects, members, API keys and invitations.

Every queryset starts from ``visible_to``: another project's member, key or invitation
is a 404. Changing members, keys and invitations is an admin's (and an owner's) work,
never an API key's; anything touching an owner is an owner's; deleting a project too.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from projects.api.permissions import InProjectMixin, require_change
from projects.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeySerializer,
    InvitationSerializer,
    MembershipChangeSerializer,
    MembershipSerializer,
    ProjectSerializer,
)
from projects.models import ApiKey, Invitation, Membership, Project
from projects.roles import Area, Role, role_may_delete_project, role_may_grant
from projects.selectors import api_key_of, projects_visible_to, role_of, roles_of, visible_to
from projects.services import (
    ProjectRuleError,
    api_key_create,
    api_key_revoke,
    invitation_create,
    member_add,
    member_remove,
    member_set_role,
    project_create,
    project_delete,
)

WRITE_METHODS = ["get", "post", "patch", "delete", "head", "options"]


def _refused(message: str) -> exceptions.PermissionDenied:
    return exceptions.PermissionDenied(message)


@extend_schema_view(
    list=extend_schema(summary="List your projects, with your role in each"),
    create=extend_schema(summary="Create a project (you become its owner)"),
    retrieve=extend_schema(summary="Get a project"),
    partial_update=extend_schema(summary="Rename a project or require two-factor sign-in"),
    destroy=extend_schema(summary="Delete a project and everything in it (owners only)"),
)
class ProjectViewSet(InProjectMixin, viewsets.ModelViewSet[Project]):
    serializer_class = ProjectSerializer
    http_method_names = WRITE_METHODS
    project_area = Area.PROJECT

    def get_queryset(self) -> QuerySet[Project]:
        return projects_visible_to(self.request.user).order_by("id")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["roles"] = roles_of(self.request.user)
        return context

    def project_id_of(self, obj: Project) -> int:
        return obj.pk

    def perform_create(self, serializer: Any) -> None:
        if api_key_of(self.request.user) is not None:
            raise _refused("An API key works inside its project; it cannot create projects.")
        serializer.instance = project_create(
            name=serializer.validated_data["name"],
            owner=self.request.user,  # type: ignore[arg-type]
        )
        serializer.context["roles"][serializer.instance.pk] = Role.OWNER

    def perform_update(self, serializer: Any) -> None:
        serializer.save()

    def perform_destroy(self, instance: Project) -> None:
        if not role_may_delete_project(self._role(instance)):
            raise _refused("Only an owner may delete a project.")
        try:
            project_delete(project=instance)
        except ProjectRuleError as exc:
            raise _refused(exc.messages[0]) from exc

    def _role(self, project: Project) -> str | None:
        if api_key_of(self.request.user) is not None:
            return None  # keys never delete their project
        return role_of(self.request.user, project.pk)


@extend_schema_view(
    list=extend_schema(summary="List the members of your projects (filter: ?project=)"),
    create=extend_schema(summary="Add an existing user to a project with a role"),
    retrieve=extend_schema(summary="Get a member"),
    partial_update=extend_schema(
        summary="Change a member's role", request=MembershipChangeSerializer
    ),
    destroy=extend_schema(summary="Remove a member from the project"),
)
class MembershipViewSet(InProjectMixin, viewsets.ModelViewSet[Membership]):
    http_method_names = WRITE_METHODS
    project_area = Area.MEMBERS

    def get_serializer_class(self) -> Any:
        if self.action == "partial_update":
            return MembershipChangeSerializer
        return MembershipSerializer

    def get_queryset(self) -> QuerySet[Membership]:
        members = Membership.objects.select_related("user").order_by("project_id", "id")
        project = self.request.query_params.get("project", "")
        if project.isdigit():
            members = members.filter(project_id=int(project))
        return visible_to(self.request.user, members)

    def perform_create(self, serializer: Any) -> None:
        project = serializer.validated_data["project"]
        require_change(self.request.user, project.pk, self.project_area)
        role = serializer.validated_data["role"]
        self._may_grant(project.pk, old=None, new=role)
        serializer.instance = member_add(
            project=project, user=serializer.validated_data["user"], role=role
        )

    def perform_update(self, serializer: Any) -> None:
        membership: Membership = serializer.instance
        role = serializer.validated_data.get("role", membership.role)
        self._may_grant(membership.project_id, old=membership.role, new=role)
        try:
            serializer.instance = member_set_role(membership=membership, role=role)
        except ProjectRuleError as exc:
            raise exceptions.ValidationError({"role": exc.messages}) from exc

    def perform_destroy(self, instance: Membership) -> None:
        self._may_grant(instance.project_id, old=instance.role, new=None)
        try:
            member_remove(membership=instance)
        except ProjectRuleError as exc:
            raise _refused(exc.messages[0]) from exc

    def _may_grant(self, project_id: int, *, old: str | None, new: str | None) -> None:
        if not role_may_grant(role_of(self.request.user, project_id), old=old, new=new):
            raise _refused("Only an owner may make or change owners.")


@extend_schema_view(
    list=extend_schema(summary="List the API keys of your projects (never their secrets)"),
    retrieve=extend_schema(summary="Get an API key (never its secret)"),
    destroy=extend_schema(summary="Revoke an API key (it stops working at once)"),
)
class ApiKeyViewSet(
    InProjectMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[ApiKey],
):
    serializer_class = ApiKeySerializer
    project_area = Area.KEYS

    def get_queryset(self) -> QuerySet[ApiKey]:
        return visible_to(self.request.user, ApiKey.objects.order_by("-id"))

    @extend_schema(
        summary="Create an API key; the answer holds its secret, shown this once",
        responses={201: ApiKeyCreatedSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = serializer.validated_data["project"]
        require_change(request.user, project.pk, self.project_area)
        key, secret = api_key_create(
            project=project,
            name=serializer.validated_data["name"],
            read_only=serializer.validated_data.get("read_only", True),
            created_by=request.user,  # type: ignore[arg-type]
        )
        key.secret = secret  # type: ignore[attr-defined]
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiKey) -> None:
        api_key_revoke(key=instance)


@extend_schema_view(
    list=extend_schema(summary="List the invitations of your projects"),
    create=extend_schema(summary="Invite someone by email to a project with a role"),
    retrieve=extend_schema(summary="Get an invitation"),
    destroy=extend_schema(summary="Withdraw an invitation"),
)
class InvitationViewSet(
    InProjectMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[Invitation],
):
    serializer_class = InvitationSerializer
    project_area = Area.MEMBERS

    def get_queryset(self) -> QuerySet[Invitation]:
        return visible_to(self.request.user, Invitation.objects.order_by("-id"))

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        require_change(self.request.user, data["project"].pk, self.project_area)
        if not role_may_grant(
            role_of(self.request.user, data["project"].pk), old=None, new=data["role"]
        ):
            raise _refused("Only an owner may invite owners.")
        accept = reverse("project-invitation-accept", args=["TOKEN"])
        serializer.instance, _ = invitation_create(
            project=data["project"],
            email=data["email"],
            role=data["role"],
            invited_by=self.request.user,  # type: ignore[arg-type]
            accept_url=self.request.build_absolute_uri(accept).replace("TOKEN", "{token}"),
        )
