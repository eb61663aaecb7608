"""Projects, their members, API keys and invitations.

A project holds everything an owner had before projects: the apps above give their
models a ``project`` through ``InProject``. Access follows membership
(``projects.selectors``); the ``owner`` an object keeps is who created it.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, models, transaction

from projects.roles import Role

# What an API key's secret starts with, so a leaked one is recognisable in a scan.
KEY_MARK = "us_"
# The public part of a key: stored in clear for the look-up, shown in lists.
KEY_PREFIX_LENGTH = 8


class Project(models.Model):
    """A set of monitors and what goes with them, shared by its members."""

    name = models.CharField(max_length=100)
    # The project made for one user (their objects from before projects, and where
    # their new objects go by default); NULL for projects made on purpose.
    personal_of = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="personal_project",
    )
    require_2fa = models.BooleanField(
        "require two-factor sign-in",
        default=False,
        help_text="Members signed in without a code are sent to set up two-factor "
        "sign-in before they see this project (sessions only; API keys are unaffected).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def get_additional_data(self) -> dict[str, Any]:
        return {"project": self.pk}


class Membership(models.Model):
    """One user's role in one project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=9, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user"]
        constraints = [
            # One role per user and project; also the index of "my projects"
            # (projects.selectors.member_project_ids filters on user first).
            models.UniqueConstraint(fields=["user", "project"], name="membership_user_project_uq"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} is {self.role} of {self.project_id}"

    def get_additional_data(self) -> dict[str, Any]:
        return {"project": self.project_id}


def personal_project_id(*, user_id: int) -> int:
    """The id of ``user_id``'s personal project, made (with them as owner) if missing.

    Two requests of a brand-new user can race here; the unique ``personal_of`` lets
    one insert win and the other reads it."""
    found = Project.objects.filter(personal_of_id=user_id).values_list("pk", flat=True).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            project = Project.objects.create(name=_username(user_id), personal_of_id=user_id)
            Membership.objects.create(project=project, user_id=user_id, role=Role.OWNER)
    except IntegrityError:
        return Project.objects.get(personal_of_id=user_id).pk
    return project.pk


def _username(user_id: int) -> str:
    name = get_user_model().objects.filter(pk=user_id).values_list("username", flat=True).first()
    return str(name or f"user {user_id}")


class InProject(models.Model):
    """Abstract base of everything that belongs to a project.

    An object saved without a project goes to its ``owner``'s personal project: the
    default of every writer that does not choose one (the admin, older callers)."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="%(app_label)s_%(class)s_set"
    )

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._default_project()
        super().save(*args, **kwargs)

    def full_clean(self, *args: Any, **kwargs: Any) -> None:
        self._default_project()
        super().full_clean(*args, **kwargs)

    def get_additional_data(self) -> dict[str, Any]:
        """What the audit trail stores with each entry: the project, so a project's
        history is found by it, deleted objects included (django-auditlog's hook)."""
        return {"project": self.project_id}

    def _default_project(self) -> None:
        owner_id = getattr(self, "owner_id", None)
        if self.project_id is None and owner_id is not None:
            self.project_id = personal_project_id(user_id=owner_id)


def key_hash(secret: str) -> str:
    """The stored form of an API key's secret: hex SHA-256. The secret is 32 random
    bytes, so a fast hash is enough (nothing to brute-force, unlike a password)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    """A project's API key. Only its hash is stored; the secret is shown once."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    read_only = models.BooleanField(default=True)
    # The secret's first characters after the mark, in clear: finds the row to compare.
    prefix = models.CharField(max_length=KEY_PREFIX_LENGTH, unique=True)
    hashed = models.CharField(max_length=64)
    # Who made it; the API's changes through the key are recorded as theirs.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({KEY_MARK}{self.prefix}…)"

    def get_additional_data(self) -> dict[str, Any]:
        return {"project": self.project_id}

    @staticmethod
    def new_secret() -> str:
        """A fresh secret: the mark, then 32 random bytes in URL-safe base64."""
        return KEY_MARK + secrets.token_urlsafe(32)

    @staticmethod
    def prefix_of(secret: str) -> str:
        return secret.removeprefix(KEY_MARK)[:KEY_PREFIX_LENGTH]


class Invitation(models.Model):
    """An invitation to join a project with a role, sent by email as a link."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=9, choices=Role.choices)
    # The link's token, stored hashed like a key (``key_hash``).
    hashed = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-created_at"]

    def __str__(self) -> str:
        return f"{self.email} to {self.project_id} as {self.role}"

    def get_additional_data(self) -> dict[str, Any]:
        return {"project": self.project_id}
