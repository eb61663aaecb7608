"""Redirect targets resolved as a browser resolves them, the same on both HTTP paths:
a local lab redirects with each form of Location, and only the target a browser
would request next answers 200."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from yarl import URL

from monitors.probes import ProbeSpec, check_batch
from monitors.probes.redirects import resolve_location
from telemetry.records import FailureKind
from tests.targets import REDIRECT_FORMS


def check(url, *, policy):
    spec = ProbeSpec(monitor_id=1, kind="http", url=url, timeout_seconds=5)
    [result] = asyncio.run(check_batch([(spec, dt.datetime.now(dt.UTC))], policy=policy))
    return result


@pytest.mark.usefixtures("http_path")
@pytest.mark.parametrize("form", REDIRECT_FORMS)
def test_it_lands_where_a_browser_lands(form, target, loopback_policy):
    _location, landing = REDIRECT_FORMS[form]

    result = check(target.lab_url(f"/from/{form}/page"), policy=loopback_policy)

    assert result.ok and result.status_code == 200, (result, target.lab_requested[-2:])
    assert target.lab_requested[-1] == landing


@pytest.mark.usefixtures("http_path")
def test_a_redirect_to_another_scheme_is_invalid(target, loopback_policy):
    result = check(target.url("/redirect?to=ftp://127.0.0.1/file"), policy=loopback_policy)

    assert result.failure == FailureKind.INVALID
    assert result.error == "redirect to a ftp URL"


BASE = URL("http://shop.example:8080/a/b/page?x=1#top")


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("https://other.example/x", "https://other.example/x"),
        ("//cdn.example/x", "http://cdn.example/x"),
        ("/x", "http://shop.example:8080/x"),
        ("x", "http://shop.example:8080/a/b/x"),
        ("../x", "http://shop.example:8080/a/x"),
        ("../../../x", "http://shop.example:8080/x"),
        ("?y=2", "http://shop.example:8080/a/b/page?y=2"),
        ("#only", "http://shop.example:8080/a/b/page?x=1"),
        ("/a b?q=a b", "http://shop.example:8080/a%20b?q=a%20b"),
        ("/café?q=日", "http://shop.example:8080/caf%C3%A9?q=%E6%97%A5"),
        ("/caf\udce9", "http://shop.example:8080/caf%E9"),
        ("/caf%C3%A9", "http://shop.example:8080/caf%C3%A9"),
        ("/100%", "http://shop.example:8080/100%"),
        ('/x{y}"<z>', "http://shop.example:8080/x%7By%7D%22%3Cz%3E"),
        ("/x?it's", "http://shop.example:8080/x?it%27s"),
        ("  /trimmed\t ", "http://shop.example:8080/trimmed"),
        ("//bücher.example/x", "http://xn--bcher-kva.example/x"),
    ],
)
def test_resolve_location_follows_rfc3986_and_the_url_standard(location, expected):
    assert str(resolve_location(BASE, location)) == expected
