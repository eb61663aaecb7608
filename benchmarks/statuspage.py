"""Status page scenario: a public page of 1,000 monitors, its badges, and the dashboard
overview of 10,000 monitors measured cold, on the dashboard scenario's dataset.

Dataset: the dashboard scenario's (``benchmarks.dashboard.ensure_dataset``: 10,000
monitors, 40.3 million raw rows and their rollups; 1,000 monitors for 2 days in quick
mode), shared through the same database, and each monitor's rollup summary rebuilt from
those rollups (the dataset is written around the fold that keeps them). One page,
``bench-status``, holds the first 1,000 monitors in 10 groups.

Measured, server side (Django test client, templates rendered):
- the page cold: the first request, with the page cache emptied (Redis and the
  process's copy), right after the scenarios before it (in ``make bench``, the
  100,000-monitor pipeline), so MariaDB's buffer pool holds other tables' pages; then
  uncached (cache emptied before every request) and warm (cache filled) p95;
- ``summary.json`` warm p95 and a monitor's uptime badge warm p95;
- the dashboard overview of the 10,000-monitor user cold on purpose: the Redis cache
  (fleet summary included) emptied before every request, pages never visited before.
"""

from __future__ import annotations

import random
import time
from typing import Any

from benchmarks import dashboard, runtime

PAGE_SLUG = "bench-status"
PAGE_MONITORS = 1_000
GROUPS = 10


def run(*, quick: bool, report: dict[str, Any]) -> None:
    import django

    django.setup()
    scale = {"raw_monitors": 1_000, "days": 2} if quick else {"raw_monitors": 10_000, "days": 28}
    user_id, monitor_ids = dashboard.ensure_monitors()
    dashboard.ensure_dataset(owner_id=user_id, monitor_ids=monitor_ids, **scale)
    page = ensure_page(user_id, monitor_ids[:PAGE_MONITORS])
    repeat = 10 if quick else 40
    measure_page(page, report, repeat=repeat)
    measure_badge(monitor_ids[0], report, repeat=repeat * 5)
    measure_overview_cold(user_id, report, repeat=repeat)


def ensure_page(user_id: int, monitor_ids: list[int]) -> Any:
    """The bench page with ``monitor_ids`` in ``GROUPS`` groups (made anew each run)."""
    from statuspages.models import StatusPage
    from statuspages.services import page_layout_set

    StatusPage.objects.filter(slug=PAGE_SLUG).delete()
    page = StatusPage.objects.create(owner_id=user_id, slug=PAGE_SLUG, title="Bench status")
    size = len(monitor_ids) // GROUPS
    page_layout_set(
        page=page,
        layout=[
            {
                "name": f"Group {g}",
                "monitors": [{"monitor": pk} for pk in monitor_ids[g * size : (g + 1) * size]],
            }
            for g in range(GROUPS)
        ],
    )
    return page


def _timed(client: Any, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}")
    return elapsed


def measure_page(page: Any, report: dict[str, Any], *, repeat: int) -> None:
    from django.core.cache import cache
    from django.test import Client

    from statuspages import render

    client = Client(HTTP_HOST="localhost")
    path = f"/status/{page.slug}/"
    # Django's own first-request costs (URLconf, templates) are not the page's: a 404 of
    # another slug pays them.
    client.get("/status/no-such-page/")
    cache.clear()
    render._local.clear()
    report["statuspage.page_1k_cold_ms"] = round(_timed(client, path), 1)
    uncached = []
    for _ in range(repeat):
        cache.clear()  # Redis and this process's copy: the page is computed each time
        render._local.clear()
        uncached.append(_timed(client, path))
    warm = [_timed(client, path) for _ in range(repeat * 3)]
    summary = [_timed(client, f"{path}summary.json") for _ in range(repeat * 3)]
    report["statuspage.page_1k_uncached_p95_ms"] = round(runtime.percentile(uncached, 0.95), 1)
    report["statuspage.page_1k_warm_p95_ms"] = round(runtime.percentile(warm, 0.95), 1)
    report["statuspage.summary_json_warm_p95_ms"] = round(runtime.percentile(summary, 0.95), 1)
    report["statuspage.page_1k_bytes"] = len(client.get(path).content)
    runtime.stage(
        f"statuspage: 1,000-monitor page cold {report['statuspage.page_1k_cold_ms']} ms, "
        f"uncached p95 {report['statuspage.page_1k_uncached_p95_ms']} ms, "
        f"warm p95 {report['statuspage.page_1k_warm_p95_ms']} ms"
    )


def measure_badge(monitor_id: int, report: dict[str, Any], *, repeat: int) -> None:
    from django.test import Client

    from monitors.models import Monitor
    from statuspages.services import monitor_badge_key

    key = monitor_badge_key(monitor=Monitor.objects.get(pk=monitor_id))
    client = Client(HTTP_HOST="localhost")
    path = f"/badge/{key}/uptime.svg?window=30d"
    _timed(client, path)
    durations = [_timed(client, path) for _ in range(repeat)]
    report["statuspage.badge_warm_p95_ms"] = round(runtime.percentile(durations, 0.95), 2)
    runtime.stage(f"statuspage: badge warm p95 {report['statuspage.badge_warm_p95_ms']} ms")


def measure_overview_cold(user_id: int, report: dict[str, Any], *, repeat: int) -> None:
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.test import Client

    from reporting.views import PAGE_SIZE

    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(pk=user_id))
    pages = random.Random(17).sample(range(1, dashboard.MONITORS // PAGE_SIZE + 1), repeat)
    durations = []
    for number in pages:
        cache.clear()  # the fleet summary too: every request is a first visit
        durations.append(_timed(client, f"/dashboard/?page={number}"))
    report["statuspage.overview_10k_cold_p95_ms"] = round(runtime.percentile(durations, 0.95), 1)
    runtime.stage(
        f"statuspage: overview (10k monitors) cold p95 "
        f"{report['statuspage.overview_10k_cold_p95_ms']} ms"
    )
