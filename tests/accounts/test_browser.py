"""Two-factor sign-in in a real browser (headless Chromium, as tests/reporting's
walkthrough): turn it on by scanning nothing but typing the key's code, then sign in
with the password and a code. Screenshots land in ``test-artifacts/``."""

from __future__ import annotations

import base64
import time

import pytest

from tests.accounts.test_two_factor import PASSWORD, totp
from tests.factories import UserFactory
from tests.reporting.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS


def test_a_user_turns_on_two_factor_sign_in_and_signs_in_with_a_code(live_server, transactional_db):
    from playwright.sync_api import sync_playwright

    UserFactory(username="grace")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(f"{live_server.url}/dashboard/login/")
            page.fill("#id_username", "grace")
            page.fill("#id_password", PASSWORD)
            page.click("main button.primary")
            page.click("header >> text=grace")
            page.click("text=Turn on")
            assert page.locator("svg").count() >= 1  # the QR code
            key = base64.b32decode(page.locator("code").inner_text())
            page.screenshot(path=str(ARTIFACTS / "two-factor-enrol.png"), full_page=True)
            page.fill("#id_code", totp(key))
            page.click("main button.primary")
            assert page.locator("li code").count() == 10
            page.screenshot(path=str(ARTIFACTS / "two-factor-recovery-codes.png"), full_page=True)

            page.click("header button")  # log out
            page.fill("#id_username", "grace")
            page.fill("#id_password", PASSWORD)
            page.click("main button.primary")
            assert page.url.endswith("/dashboard/login/code/")
            page.screenshot(path=str(ARTIFACTS / "two-factor-code.png"))
            page.fill("#id_code", totp(key, time.time() + 30))
            page.click("main button.primary")
            assert page.url == f"{live_server.url}/dashboard/"
        finally:
            browser.close()


pytestmark = pytest.mark.django_db(transaction=True)
