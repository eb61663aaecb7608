"""The alerting pages in a real browser (headless Chromium, as ``tests/reporting/
test_browser.py``): a form shows the fields of the chosen kind only, without script,
and an owner goes from a new channel to a test send to a rule through it.
Screenshots land in ``test-artifacts/``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alerting.models import AlertRule, NotificationChannel
from tests.factories import MonitorFactory, UserFactory
from tests.reporting.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

SECRET = "sig-Br0wser-never-shown"


@pytest.fixture
def owner_data(transactional_db):
    """Committed rows: the live server reads them from its own connection."""
    user = UserFactory(username="lin")
    return user, MonitorFactory(owner=user, name="Checkout", interval_seconds=60)


def test_an_owner_adds_a_channel_tests_it_and_alerts_a_monitor_through_it(
    live_server, owner_data, receiver
):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Chromium is missing: run bin/ensure-system-packages (make venv does).")
    from playwright.sync_api import sync_playwright

    _, monitor = owner_data
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{live_server.url}/dashboard/login/")
            page.fill("#id_username", "lin")
            page.fill("#id_password", "correct horse")
            page.click("button[type=submit]")
            page.click("header >> text=Channels")
            page.click("text=New channel")

            page.select_option("#id_kind", "email")
            assert page.is_visible("#id_address") and not page.is_visible("#id_url")
            page.select_option("#id_kind", "webhook")
            assert not page.is_visible("#id_address")
            assert page.is_visible("#id_url") and page.is_visible("#id_secret")
            page.fill("#id_name", "On-call hook")
            page.fill("#id_url", receiver.url("/ok"))
            page.fill("#id_secret", SECRET)
            page.screenshot(path=str(ARTIFACTS / "alerting-channel-form.png"), full_page=True)
            page.click("button.primary")

            page.wait_for_selector("tr.channel")
            page.click("text=Send test")
            page.wait_for_selector("text=Test notification sent to On-call hook.")
            assert len(receiver.wait_for(1)) == 1
            page.screenshot(path=str(ARTIFACTS / "alerting-channels.png"), full_page=True)
            assert SECRET not in page.content()

            page.goto(f"{live_server.url}/dashboard/monitors/{monitor.pk}/")
            page.click("text=Alert rules")
            page.click("text=New rule")
            page.select_option("#id_kind", "latency_p95")
            assert page.is_visible("#id_window_minutes")
            assert not page.is_visible("#id_consecutive_checks")
            page.fill("#id_threshold", "900")
            page.check("text=On-call hook")
            page.click("button.primary")
            page.wait_for_selector("tr.rule")
            page.screenshot(path=str(ARTIFACTS / "alerting-rules.png"), full_page=True)
        finally:
            browser.close()

    rule = AlertRule.objects.get(monitor=monitor)
    assert (rule.kind, rule.threshold) == ("latency_p95", 900)
    assert list(rule.channels.all()) == [NotificationChannel.objects.get(name="On-call hook")]
