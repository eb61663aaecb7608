from __future__ import annotations

import importlib
import time

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import clear_url_caches
from django_otp.admin import OTPAdminSite

from sentinel import urls
from tests.accounts.test_two_factor import PASSWORD, enrol, totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_factor_admin():
    urls.admin_two_factor(required=True)
    yield
    urls.admin_two_factor(required=False)


def test_the_setting_makes_the_admin_require_two_factor(settings):
    settings.SENTINEL_ADMIN_REQUIRE_2FA = True
    try:
        importlib.reload(urls)
        assert isinstance(admin.site, OTPAdminSite)
    finally:
        settings.SENTINEL_ADMIN_REQUIRE_2FA = False
        importlib.reload(urls)
        clear_url_caches()
    assert not isinstance(admin.site, OTPAdminSite)


def test_staff_signed_in_with_a_password_only_are_kept_out(operator, two_factor_admin):
    client = Client()
    client.force_login(operator)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_staff_signed_in_with_a_code_get_in(operator, two_factor_admin):
    setup = Client()
    setup.force_login(operator)
    key, _ = enrol(setup)
    client = Client()
    client.post("/dashboard/login/", {"username": operator.username, "password": PASSWORD})
    client.post("/dashboard/login/code/", {"code": totp(key, time.time() + 30)})
    assert client.get("/admin/").status_code == 200


def test_without_the_setting_staff_get_in_with_a_password(operator):
    client = Client()
    client.force_login(operator)
    assert client.get("/admin/").status_code == 200
