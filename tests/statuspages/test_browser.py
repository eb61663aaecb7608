"""A public status page in a real browser, on a phone and a desktop: headless Chromium
(Debian's package, driven by Playwright through ``executable_path``; nothing downloads a
browser) against pytest-django's live server. Screenshots land in ``tmp/artifacts/``
(not committed)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from statuspages.services import page_incident_post, page_layout_set
from tests.factories import MonitorFactory, StatusPageFactory, UserFactory
from tests.reporting.rows import make_results, store_results
from tests.reporting.test_browser import CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = Path(settings.BASE_DIR) / "tmp" / "artifacts"
VIEWPORTS: dict[str, Any] = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 900},
}


@pytest.fixture
def public_page(transactional_db):
    """Committed rows: the live server reads them from its own connection."""
    owner = UserFactory(username="grace")
    now = timezone.now().replace(microsecond=0)
    monitors = [
        MonitorFactory(owner=owner, name=name, status=status)
        for name, status in (("shop-1", "up"), ("pay-1", "down"), ("blog-1", "up"))
    ]
    results = []
    for seed, monitor in enumerate(monitors):
        results += make_results(
            monitor_id=monitor.pk,
            end=now,
            span=dt.timedelta(days=60),
            every=dt.timedelta(hours=1),
            seed=seed,
            failure_rate=0.2 if monitor.status == "down" else 0.005,
        )
    store_results(results)
    page = StatusPageFactory(owner=owner, slug="acme", title="Acme status", theme="light")
    page_layout_set(
        page=page,
        layout=[
            {
                "name": "Shop",
                "monitors": [{"monitor": monitors[0].pk, "display_name": "Storefront"}],
            },
            {
                "name": "Platform",
                "monitors": [
                    {"monitor": monitors[1].pk, "display_name": "Payments"},
                    {"monitor": monitors[2].pk, "display_name": "Blog"},
                ],
            },
        ],
    )
    page_incident_post(
        page=page,
        title="Card payments failing",
        body="Some card payments fail. We are **on it**.",
        impact="major",
        monitor_ids=[monitors[1].pk],
    )
    yield page
    ids = ", ".join(str(m.pk) for m in monitors)
    with connection.cursor() as cursor:
        for table in (
            "check_result",
            "check_rollup_hourly",
            "check_rollup_daily",
            "monitor_rollup_summary",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE monitor_id IN ({ids})")


def test_a_visitor_opens_a_public_page_on_a_phone_and_a_desktop(live_server, public_page):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Chromium is missing: run bin/ensure-system-packages (make venv does).")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--disable-sync"]
        )
        try:
            for name, viewport in VIEWPORTS.items():
                page = browser.new_context(viewport=viewport).new_page()
                page.goto(f"{live_server.url}/status/acme/")
                assert page.locator(".banner").inner_text() == "Partial outage"
                assert page.locator("li.monitor").count() == 3
                assert page.locator("li.monitor .bars").first.locator("i").count() == 90
                assert "Card payments failing" in page.locator("#live").inner_text()
                assert page.locator("#live strong", has_text="on it").count() == 1
                # The bars fill the row and nothing scrolls sideways.
                bars = page.locator("li.monitor .bars").first.bounding_box()
                assert bars is not None and bars["width"] > viewport["width"] * 0.6
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
                # A tooltip per day: the date and its uptime (Payments fails every day).
                payments = page.locator("li.monitor").nth(1).locator(".bars i").last
                tooltip = payments.get_attribute("title") or ""
                assert re.fullmatch(r"\d{4}-\d\d-\d\d \d+\.\d\d % \(\d+/\d+ failed\)", tooltip)
                page.screenshot(path=str(ARTIFACTS / f"status-page-{name}.png"), full_page=True)
        finally:
            browser.close()
