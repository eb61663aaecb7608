"""The dashboard in a real browser: headless Chromium (Debian's package, driven by
Playwright through ``executable_path``; nothing downloads a browser) against
pytest-django's live server. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from tests.factories import MonitorFactory, UserFactory
from tests.reporting.rows import make_results, store_results

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


@pytest.fixture
def walkthrough_data(transactional_db):
    """Committed rows (the live server reads them from its own connection); the raw
    tables are not Django models, so the flush after the test would not empty them."""
    user = UserFactory(username="ada")
    now = timezone.now().replace(microsecond=0)
    monitors = [
        MonitorFactory(owner=user, name=name, status=status)
        for name, status in (("Shop front", "up"), ("Payments API", "down"), ("Blog", "up"))
    ]
    results = []
    for seed, monitor in enumerate(monitors):
        results += make_results(
            monitor_id=monitor.pk,
            end=now,
            span=dt.timedelta(days=32),
            every=dt.timedelta(minutes=30),
            seed=seed,
            failure_rate=0.3 if monitor.status == "down" else 0.01,
        )
    store_results(results)
    for monitor in monitors:
        monitor.last_checked_at = max(r.scheduled_at for r in results if r.monitor_id == monitor.pk)
        monitor.save(update_fields=["last_checked_at"])
    yield user, monitors
    ids = ", ".join(str(m.pk) for m in monitors)
    with connection.cursor() as cursor:
        for table in ("check_result", "check_rollup_hourly", "check_rollup_daily"):
            cursor.execute(f"DELETE FROM {table} WHERE monitor_id IN ({ids})")


def test_a_user_logs_in_sees_the_overview_and_a_monitor_chart(live_server, walkthrough_data):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Chromium is missing: run bin/ensure-system-packages (make venv does).")
    from playwright.sync_api import sync_playwright

    _, monitors = walkthrough_data
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{live_server.url}/dashboard/")
            assert "/dashboard/login/" in page.url
            page.fill("#id_username", "ada")
            page.fill("#id_password", "correct horse")
            page.click("button[type=submit]")

            page.wait_for_selector("tr.monitor-row")
            assert page.locator("tr.monitor-row").count() == 3
            assert page.locator('[data-status="down"]').inner_text() == "1"
            assert page.locator("svg.spark polyline").count() >= 3
            page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"), full_page=True)

            page.click("text=Payments API")
            page.wait_for_selector("svg.chart")
            assert page.locator("svg.chart polyline.series-avg").count() == 1
            assert page.locator("svg.chart polyline.series-p95").count() == 1
            box = page.locator("svg.chart").bounding_box()
            assert box is not None and box["width"] > 600 and box["height"] > 150
            assert page.locator("svg.bars rect").count() == 90
            page.screenshot(path=str(ARTIFACTS / "dashboard-monitor.png"), full_page=True)

            # The API docs run Swagger UI from this server's static files, not a CDN.
            page.goto(f"{live_server.url}/api/v1/docs/")
            page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
            assert "UptimeSentinel API" in page.locator(".swagger-ui .info .title").inner_text()
            page.screenshot(path=str(ARTIFACTS / "api-docs.png"))

            phone = browser.new_context(
                viewport={"width": 390, "height": 844}, storage_state=page.context.storage_state()
            ).new_page()
            phone.goto(f"{live_server.url}/dashboard/monitors/{monitors[1].pk}/?range=7d")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390  # no sideways scrolling on a phone
            phone.screenshot(path=str(ARTIFACTS / "dashboard-monitor-phone.png"), full_page=True)
        finally:
            browser.close()
