"""docs/deploying.md lists every metric /metrics exposes, and its example alerts are
rules Prometheus accepts (``promtool check rules``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploying.md"
PROMTOOL = shutil.which("promtool")


def metrics_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index("### /metrics") :]


@pytest.mark.django_db
def test_every_metric_on_metrics_is_in_the_table(client, redis_client, settings):
    settings.SENTINEL_METRICS_TOKEN = "scrape-token"
    settings.SENTINEL_METRICS_PER_MONITOR = True

    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token").content.decode()

    exposed = set(re.findall(r"^# TYPE (\S+) ", body, flags=re.MULTILINE))
    # The table's first column: | `name` | or | `name`, `other` |
    rows = re.findall(r"^\| ((?:`sentinel_\w+`(?:, )?)+) \|", metrics_section(), re.MULTILINE)
    documented = {name for row in rows for name in re.findall(r"`(sentinel_\w+)`", row)}
    assert exposed and exposed <= documented, exposed - documented


@pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed: it comes in Debian's prometheus package, which "
    "bin/ensure-system-packages installs ('make venv')",
)
def test_the_example_alerts_are_valid_prometheus_rules(tmp_path):
    [rules] = re.findall(r"```yaml\n(.*?)```", metrics_section(), flags=re.DOTALL)
    path = tmp_path / "rules.yaml"
    path.write_text(rules, encoding="utf-8")

    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
