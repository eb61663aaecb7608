"""Two-factor devices of a user: enrol, verify a code, recovery codes, disable.

A user has at most one authenticator (a ``TOTPDevice``, RFC 6238: 6 digits, 30 s
steps) and one set of recovery codes (a ``StaticDevice`` whose tokens are each
accepted once). Wrong codes are throttled by django-otp per device (the wait doubles
after each failure), so a code cannot be guessed by trying them all.
"""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.db import transaction
from django_otp import devices_for_user, user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODES = 10
AUTHENTICATOR = "authenticator"
RECOVERY = "recovery codes"
TOTP_CODE = re.compile(r"^\d{6}$")


def two_factor_enabled(*, user: User) -> bool:
    """Whether signing in as ``user`` asks for a code (a confirmed device exists)."""
    return bool(user.is_authenticated and user_has_device(user, confirmed=True))


def authenticator_pending(*, user: User) -> TOTPDevice:
    """The user's authenticator being enrolled (unconfirmed): made with a new random
    key on first call, the same one until it is confirmed, so a reloaded page keeps
    showing the QR code already scanned."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, confirmed=False)


@transaction.atomic
def authenticator_confirm(*, user: User, code: str) -> list[str] | None:
    """Confirm the pending authenticator with a code from the app; returns the new
    recovery codes (shown once), or None when the code is wrong."""
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
    if device is None or not device.verify_token(code.strip()):
        return None
    TOTPDevice.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return recovery_codes_renew(user=user)


@transaction.atomic
def recovery_codes_renew(*, user: User) -> list[str]:
    """A new set of recovery codes, replacing the old ones (each works once)."""
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def recovery_codes_left(*, user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


@transaction.atomic
def two_factor_verify(*, user: User, code: str) -> Device | None:
    """The confirmed device that accepts ``code`` (6 digits: the authenticator; else a
    recovery code, used up by this), or None. Each device throttles wrong codes."""
    code = code.strip().replace(" ", "")
    kind = TOTPDevice if TOTP_CODE.match(code) else StaticDevice
    if kind is StaticDevice:
        code = code.lower()  # random_token() makes lower-case codes; people type either
    for device in devices_for_user(user, confirmed=True, for_verify=True):
        if isinstance(device, kind) and device.verify_token(code):
            return device
    return None


@transaction.atomic
def two_factor_disable(*, user: User) -> None:
    """Remove every device: signing in asks for the password only again."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
