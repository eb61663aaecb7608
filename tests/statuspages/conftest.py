from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone

from monitors.models import Monitor
from statuspages import render
from statuspages.domains import domains
from statuspages.services import page_layout_set
from tests.factories import MonitorFactory, StatusPageFactory
from tests.reporting.rows import make_results, store_results


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Each test starts without another test's cached page state or domains."""
    cache.clear()
    render._local.clear()
    domains.forget()
    yield
    cache.clear()
    render._local.clear()
    domains.forget()


@pytest.fixture
def now() -> dt.datetime:
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def shop(db, user, telemetry_tables, now):
    """A public page of ``user`` with two monitors in two groups, 40 days of checks
    each; and a third monitor of the same owner that is NOT on the page."""
    api = MonitorFactory(
        owner=user, name="api-internal-7", url="http://127.0.0.1:9/secret-path", status="up"
    )
    web = MonitorFactory(owner=user, name="web-prod", url="http://127.0.0.1:9/web", status="down")
    hidden = MonitorFactory(
        owner=user, name="hidden-backoffice", url="http://127.0.0.1:9/hidden", status="down"
    )
    results = []
    for seed, (monitor, rate) in enumerate(((api, 0.01), (web, 0.2), (hidden, 0.5))):
        results += make_results(
            monitor_id=monitor.pk,
            end=now,
            span=dt.timedelta(days=40),
            every=dt.timedelta(minutes=30),
            seed=seed,
            failure_rate=rate,
        )
    store_results(results)
    page = StatusPageFactory(owner=user, slug="shop", title="Shop status")
    page_layout_set(
        page=page,
        layout=[
            {"name": "Backend", "monitors": [{"monitor": api.pk, "display_name": "API"}]},
            {"name": "Frontend", "monitors": [{"monitor": web.pk, "display_name": "Website"}]},
        ],
    )
    return page, {"api": api, "web": web, "hidden": hidden}, results


def set_status(monitor: Monitor, status: str) -> None:
    Monitor.objects.filter(pk=monitor.pk).update(status=status)
