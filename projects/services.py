"""Writes to projects: create and delete, members and their roles, API keys,
invitations. Who may call which is the callers' check (``projects.roles``); the rules
that hold whoever calls (a project keeps an owner, a personal project stays) are here,
as ``ProjectRuleError``."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from projects.models import ApiKey, Invitation, Membership, Project, key_hash
from projects.roles import Role

# A key's last-used time is written at most this often, not on every request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class ProjectRuleError(ValidationError):
    """A change no role may make: the last owner leaving, a personal project deleted."""


class InvitationError(Exception):
    """An invitation link that cannot be accepted; the message says why."""


@transaction.atomic
def project_create(*, name: str, owner: AbstractBaseUser) -> Project:
    """A new project with ``owner`` as its owner."""
    project = Project(name=name)
    project.full_clean()
    project.save()
    Membership.objects.create(project=project, user_id=owner.pk, role=Role.OWNER)
    return project


def project_delete(*, project: Project) -> None:
    """Delete the project and everything in it; a personal project stays (its user's
    objects default to it)."""
    if project.personal_of_id is not None:
        raise ProjectRuleError("A personal project cannot be deleted.")
    project.delete()


@transaction.atomic
def member_add(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Make ``user`` a member with ``role``, or change their role if they are one."""
    membership, _ = Membership.objects.select_for_update().get_or_create(
        project=project, user_id=user.pk, defaults={"role": role}
    )
    if membership.role != role:
        return member_set_role(membership=membership, role=role)
    return membership


@transaction.atomic
def member_set_role(*, membership: Membership, role: str) -> Membership:
    """Change a member's role; the last owner stays an owner."""
    if membership.role == Role.OWNER and role != Role.OWNER:
        _another_owner_remains(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def member_remove(*, membership: Membership) -> None:
    """Take a member out of the project; the last owner stays."""
    if membership.role == Role.OWNER:
        _another_owner_remains(membership)
    membership.delete()


def _another_owner_remains(membership: Membership) -> None:
    # Locks the project's owner rows, so two admins demoting the last two owners at
    # once cannot both succeed.
    owners = list(
        Membership.objects.select_for_update()
        .filter(project_id=membership.project_id, role=Role.OWNER)
        .values_list("pk", flat=True)
    )
    if set(owners) <= {membership.pk}:
        raise ProjectRuleError("A project keeps at least one owner.")


def api_key_create(
    *, project: Project, name: str, read_only: bool, created_by: AbstractBaseUser
) -> tuple[ApiKey, str]:
    """A new key of ``project``; returns it and its secret, which is stored only as a
    hash and so can be shown this once."""
    secret = ApiKey.new_secret()
    key = ApiKey.objects.create(
        project=project,
        name=name,
        read_only=read_only,
        prefix=ApiKey.prefix_of(secret),
        hashed=key_hash(secret),
        created_by_id=created_by.pk,
    )
    return key, secret


def api_key_revoke(*, key: ApiKey) -> None:
    """Stop ``key`` from working; the row stays, with its revocation time."""
    ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now())


def api_key_authenticate(secret: str) -> ApiKey | None:
    """The live key whose secret this is, or None; notes its use (at most once a
    minute, so a busy script does not write on every request)."""
    key = (
        ApiKey.objects.select_related("created_by")
        .filter(prefix=ApiKey.prefix_of(secret), revoked_at=None)
        .first()
    )
    if key is None or not hmac.compare_digest(key.hashed, key_hash(secret)):
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def invitation_create(
    *, project: Project, email: str, role: str, invited_by: AbstractBaseUser, accept_url: str
) -> tuple[Invitation, str]:
    """Invite ``email`` to the project with ``role``: an invitation that expires after
    ``SENTINEL_INVITATION_EXPIRY_HOURS``, and an email (after commit) with the link,
    ``accept_url`` with the token in place of ``{token}``. Returns it and its token."""
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        project=project,
        email=email,
        role=role,
        hashed=key_hash(token),
        invited_by_id=invited_by.pk,
        expires_at=timezone.now() + dt.timedelta(hours=settings.SENTINEL_INVITATION_EXPIRY_HOURS),
    )
    link = accept_url.replace("{token}", token)
    transaction.on_commit(lambda: _invitation_send(invitation, link))
    return invitation, token


def _invitation_send(invitation: Invitation, link: str) -> None:
    send_mail(
        subject=f"You are invited to {invitation.project.name} on UptimeSentinel",
        message=(
            f"You are invited to join the project {invitation.project.name} as "
            f"{Role(invitation.role).label}.\n\nAccept (signed in, or after signing in): "
            f"{link}\n\nThe link works until {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


@transaction.atomic
def invitation_accept(*, token: str, user: AbstractBaseUser) -> Membership:
    """Make ``user`` a member as the invitation says; raises ``InvitationError`` for an
    unknown, used or expired link. The claim is a conditional UPDATE, so one link makes
    one member even if accepted twice at once."""
    invitation = Invitation.objects.filter(hashed=key_hash(token)).first()
    if invitation is None:
        raise InvitationError("This invitation link is not valid.")
    if invitation.accepted_at is not None:
        raise InvitationError("This invitation has already been accepted.")
    now = timezone.now()
    if invitation.expires_at <= now:
        raise InvitationError(
            f"This invitation expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
            "Ask for a new one."
        )
    claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at=None).update(accepted_at=now)
    if not claimed:
        raise InvitationError("This invitation has already been accepted.")
    existing = Membership.objects.filter(project=invitation.project, user_id=user.pk).first()
    if existing is not None:
        return existing  # an invitation never lowers (or raises) a member's role
    return Membership.objects.create(
        project=invitation.project, user_id=user.pk, role=invitation.role
    )
