"""The API's projects, members, API keys and invitations. A key's secret is in the
answer to its creation only; an invitation's token never (it goes by email)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from projects.api.fields import ProjectField
from projects.models import KEY_MARK, ApiKey, Invitation, Membership, Project
from projects.roles import Role


class ProjectSerializer(serializers.ModelSerializer[Project]):
    personal = serializers.SerializerMethodField(
        help_text="Whether this is a user's personal project (it cannot be deleted)."
    )
    role = serializers.SerializerMethodField(help_text="Your role here (null for staff).")

    class Meta:
        model = Project
        fields = ("id", "name", "personal", "role", "require_2fa", "created_at")
        read_only_fields = ("id", "created_at")

    def get_personal(self, project: Project) -> bool:
        return project.personal_of_id is not None

    def get_role(self, project: Project) -> str | None:
        roles: dict[int, str] = self.context.get("roles", {})
        return roles.get(project.pk)


class MembershipSerializer(serializers.ModelSerializer[Membership]):
    """A member. Add an existing user by ``username`` (others are invited by email)."""

    project = ProjectField(required=True)
    username = serializers.SlugRelatedField(
        source="user",
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True),
        help_text="The user's name.",
    )
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ("id", "project", "username", "role", "created_at")
        read_only_fields = ("id", "created_at")


class MembershipChangeSerializer(serializers.ModelSerializer[Membership]):
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ("id", "project", "username", "role", "created_at")
        read_only_fields = ("id", "project", "username", "created_at")

    username = serializers.CharField(source="user.username", read_only=True)


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    """A project's API key: never its secret, which only its creation answers."""

    project = ProjectField(required=True)
    prefix = serializers.SerializerMethodField(help_text="The key's first characters.")

    class Meta:
        model = ApiKey
        fields: tuple[str, ...] = (
            "id",
            "project",
            "name",
            "read_only",
            "prefix",
            "created_at",
            "last_used_at",
            "revoked_at",
        )
        read_only_fields = ("id", "created_at", "last_used_at", "revoked_at")

    def get_prefix(self, key: ApiKey) -> str:
        return f"{KEY_MARK}{key.prefix}"


class ApiKeyCreatedSerializer(ApiKeySerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The key itself: shown this once, stored only as a hash. Send it as "
        "`Authorization: Bearer <secret>`.",
    )

    class Meta(ApiKeySerializer.Meta):
        fields = (*ApiKeySerializer.Meta.fields, "secret")


class InvitationSerializer(serializers.ModelSerializer[Invitation]):
    project = ProjectField(required=True)
    role = serializers.ChoiceField(choices=Role.choices)
    accepted = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = ("id", "project", "email", "role", "created_at", "expires_at", "accepted")
        read_only_fields = ("id", "created_at", "expires_at")

    def get_accepted(self, invitation: Invitation) -> bool:
        return invitation.accepted_at is not None
