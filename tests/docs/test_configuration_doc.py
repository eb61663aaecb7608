"""docs/configuration.md names every environment variable the code reads, and nothing else.

The names are found in the source, not in a list kept by hand: ``env.<reader>("NAME"``
in the settings (``sentinel.env.Env``), ``os.environ`` / ``os.getenv`` reads anywhere in
the project's packages, and ``${NAME}`` substitutions in compose.yaml. A variable added
to the code without a line in the document fails here, and so does a documented
variable that the code no longer reads.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
SETTINGS = ROOT / "sentinel" / "settings.py"
# First-party code that may read the environment (core/ is the library layer the
# refactoring introduces; absent directories are skipped).
PACKAGES = ("core", "sentinel", "monitors", "telemetry", "reporting", "alerting", "benchmarks")

NAME = r"""["']([A-Z][A-Z0-9_]*)["']"""
# env.str("NAME", ...), env.int(\n    "NAME", ...), env.raw("NAME"), env("NAME")
ENV_READ = re.compile(r"\benv(?:\.\w+)?\(\s*" + NAME)
# os.environ.get("NAME"), os.environ["NAME"], os.environ.setdefault("NAME"), os.getenv("NAME")
OS_READ = re.compile(r"\bos\.(?:environ\.get\(|environ\.setdefault\(|environ\[|getenv\()\s*" + NAME)
COMPOSE_READ = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")
# The first cell of a table row: | `NAME` | or | `NAME`, `OTHER` |
TABLE_NAMES = re.compile(r"^\|\s*((?:`[A-Z][A-Z0-9_]*`(?:,\s*)?)+)\s*\|", re.MULTILINE)


def settings_names() -> set[str]:
    return set(ENV_READ.findall(SETTINGS.read_text(encoding="utf-8")))


def code_names() -> set[str]:
    names = settings_names()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            names |= set(OS_READ.findall(text)) | set(ENV_READ.findall(text))
    return names


def compose_names() -> set[str]:
    return set(COMPOSE_READ.findall((ROOT / "compose.yaml").read_text(encoding="utf-8")))


def documented_names() -> set[str]:
    names: set[str] = set()
    for cell in TABLE_NAMES.findall(DOC.read_text(encoding="utf-8")):
        names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", cell))
    return names


def test_the_parser_finds_the_settings_it_must():
    # Guards the regular expressions: a parser that finds nothing would pass the rest.
    names = settings_names()
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "SENTINEL_NOTIFY_TIMEOUT_SECONDS"} <= names
    assert {"TELEMETRY_INGEST_LOAD_DATA", "SENTINEL_METRICS_TOKEN", "EMAIL_TIMEOUT"} <= names
    assert len(names) >= 45


def test_every_setting_read_from_the_environment_is_documented():
    missing = sorted(settings_names() - documented_names())
    assert not missing, f"add these to docs/configuration.md: {missing}"


def test_every_variable_read_elsewhere_is_documented():
    missing = sorted((code_names() | compose_names()) - documented_names())
    assert not missing, f"add these to docs/configuration.md: {missing}"


def test_every_documented_variable_is_still_read_somewhere():
    known = code_names() | compose_names()
    stale = sorted(
        name
        for name in documented_names()
        if name not in known and name.removesuffix("_FILE") not in known
    )
    assert not stale, f"docs/configuration.md documents variables nothing reads: {stale}"
