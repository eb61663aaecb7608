from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
import time_machine
from django.test import Client
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse"  # tests.factories.UserFactory


def totp(key: bytes, at: float | None = None) -> str:
    """RFC 6238 with its defaults (HMAC-SHA1, 30 s steps, 6 digits), written out here
    so the tests check django-otp against the standard, not against itself."""
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


def enrol(client: Client) -> tuple[bytes, list[str]]:
    """Turn on two-factor sign-in through the pages; returns the key and the codes."""
    page = client.get("/account/two-factor/enrol/")
    assert page.status_code == 200 and b"<svg" in page.content
    shown = re.search(rb"<code>([A-Z2-7=]+)</code>", page.content)
    assert shown is not None
    key = base64.b32decode(shown.group(1).decode())
    answer = client.post("/account/two-factor/enrol/", {"code": totp(key)})
    assert answer.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", answer.content.decode())
    return key, codes


@pytest.fixture
def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_it_enrols_an_authenticator_with_a_real_code_and_shows_recovery_codes(signed_in, user):
    key, codes = enrol(signed_in)
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed and device.bin_key == key
    assert len(codes) == services.RECOVERY_CODES == len(set(codes))
    assert services.recovery_codes_left(user=user) == 10
    assert b"10 recovery codes left" in signed_in.get("/account/two-factor/").content


def test_it_refuses_a_wrong_code_at_enrolment(signed_in, user):
    signed_in.get("/account/two-factor/enrol/")
    answer = signed_in.post("/account/two-factor/enrol/", {"code": "000000"})
    assert b"That code is not right" in answer.content
    assert not services.two_factor_enabled(user=user)


def test_a_user_without_a_device_signs_in_with_the_password_only(user):
    client = Client()
    response = client.post("/dashboard/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200


def test_sign_in_asks_for_the_code_when_the_user_has_a_device(signed_in, user):
    key, _ = enrol(signed_in)
    client = Client()
    first = client.post(
        "/dashboard/login/",
        {"username": user.username, "password": PASSWORD, "next": "/dashboard/monitors/new/"},
    )
    assert first["Location"] == "/dashboard/login/code/"
    # The password alone signs nobody in.
    assert client.get("/dashboard/")["Location"].startswith("/dashboard/login/")
    # The enrolment used this step's code; a code is accepted once, so take the next one.
    code = totp(key, time.time() + 30)
    second = client.post("/dashboard/login/code/", {"code": code})
    assert second["Location"] == "/dashboard/monitors/new/"
    assert client.get("/dashboard/").status_code == 200


def test_a_wrong_code_does_not_sign_in_and_further_tries_are_throttled(signed_in, user):
    key, _ = enrol(signed_in)
    client = Client()
    client.post("/dashboard/login/", {"username": user.username, "password": PASSWORD})
    wrong = client.post(
        "/dashboard/login/code/", {"code": "123456" if totp(key) != "123456" else "654321"}
    )
    assert b"That code is not right" in wrong.content
    # Right away, even the right code is refused: django-otp makes the next try wait.
    right_now = client.post("/dashboard/login/code/", {"code": totp(key, time.time() + 30)})
    assert b"That code is not right" in right_now.content
    assert client.get("/dashboard/").status_code == 302
    with time_machine.travel(time.time() + 31, tick=False):
        later = client.post("/dashboard/login/code/", {"code": totp(key)})
        assert later["Location"] == "/dashboard/"


def test_a_recovery_code_signs_in_once(signed_in, user):
    _, codes = enrol(signed_in)
    for attempt in (1, 2):
        client = Client()
        client.post("/dashboard/login/", {"username": user.username, "password": PASSWORD})
        with time_machine.travel(time.time() + 5 * attempt, tick=False):
            response = client.post("/dashboard/login/code/", {"code": codes[0].upper()})
        if attempt == 1:
            assert response["Location"] == "/dashboard/"
        else:
            assert b"That code is not right" in response.content
    assert services.recovery_codes_left(user=user) == 9


def test_the_code_step_needs_the_password_step_first():
    response = Client().get("/dashboard/login/code/")
    assert response["Location"] == "/dashboard/login/"


def test_the_password_step_expires(signed_in, user):
    key, _ = enrol(signed_in)
    client = Client()
    client.post("/dashboard/login/", {"username": user.username, "password": PASSWORD})
    with time_machine.travel(time.time() + 301, tick=False):
        response = client.post("/dashboard/login/code/", {"code": totp(key)})
    assert response["Location"] == "/dashboard/login/"


def test_it_turns_off_with_a_current_code_only(signed_in, user):
    key, _ = enrol(signed_in)
    refused = signed_in.post("/account/two-factor/disable/", {"code": "nonsense"}, follow=True)
    assert b"That code is not right" in refused.content
    assert services.two_factor_enabled(user=user)
    with time_machine.travel(time.time() + 31, tick=False):
        signed_in.post("/account/two-factor/disable/", {"code": totp(key)})
    assert not services.two_factor_enabled(user=user)
    assert not StaticToken.objects.filter(device__user=user).exists()


def test_it_renews_the_recovery_codes(signed_in, user):
    key, old = enrol(signed_in)
    with time_machine.travel(time.time() + 31, tick=False):
        page = signed_in.post("/account/two-factor/recovery-codes/", {"code": totp(key)})
    new = re.findall(r"<li><code>([a-z2-7]+)</code></li>", page.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    stored = set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert stored == set(new)


def test_it_ignores_a_next_address_on_another_site(user):
    client = Client()
    response = client.post(
        "/dashboard/login/",
        {"username": user.username, "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/dashboard/"
