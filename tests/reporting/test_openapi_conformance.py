"""The API against its own OpenAPI document, with schemathesis: generated requests,
valid and invalid, to every operation, through the WSGI application (the web process
only, nothing on the network), signed in as a user who owns one of everything.

Zero failures means: no server error, no status code the document does not list for
the operation, every body, header and content type as documented, and no answer that
holds the user's channel secret. Bounded: a few
examples per operation, a fixed seed, no shrinking, so the run takes seconds and
fails the same way every time.
"""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.config import NotAServerErrorConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from alerting.models import AlertRule, MaintenanceWindow, NotificationChannel
from monitors.models import Incident, Monitor, Tag
from projects.models import ApiKey, Invitation, Membership, Project
from projects.roles import Role
from projects.services import api_key_create, invitation_create
from tests.api_clients import token_client

# Every object of the test user has this id, so a generated path id finds it half the
# time (see test_the_api_conforms_to_its_schema) and misses it the other half.
KNOWN_ID = 424242
SECRET = "sig-never-answered"
URL_TOKEN = "T0K3N-never-answered"
EXAMPLES_PER_OPERATION = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]


@pytest.fixture
def _connection_kept():
    """The WSGI handler closes the database connection after each request; the test's
    transaction lives on it. Django's own test client disconnects the same receivers."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def owned(_connection_kept, user, other_user, redis_client, settings):
    """The test user's token and one object of each resource, all with ``KNOWN_ID``
    (a project of theirs with another member, a key and an invitation among them);
    a rate no run reaches (429 is documented, and tested in test_api_actions)."""
    settings.SENTINEL_API_RATE = settings.SENTINEL_API_CHECK_NOW_RATE = "100000/minute"
    monitor = Monitor.objects.create(
        pk=KNOWN_ID, owner=user, name="shop", url="http://127.0.0.1:9/health"
    )
    monitor.tags.add(Tag.objects.create(pk=KNOWN_ID, name="shop"))
    # Nothing listens on port 9: a test send fails at once, and its error would repeat
    # the URL if it were not masked.
    channel = NotificationChannel.objects.create(
        pk=KNOWN_ID,
        owner=user,
        name="hook",
        kind="webhook",
        config={"url": f"http://127.0.0.1:9/{URL_TOKEN}", "secret": SECRET},
    )
    AlertRule.objects.create(pk=KNOWN_ID, monitor=monitor).channels.add(channel)
    now = dt.datetime.now(dt.UTC)
    MaintenanceWindow.objects.create(
        pk=KNOWN_ID, owner=user, name="w", starts_at=now, ends_at=now + dt.timedelta(hours=1)
    ).monitors.add(monitor)
    Incident.objects.create(pk=KNOWN_ID, monitor=monitor, started_at=now)
    team = Project.objects.create(pk=KNOWN_ID, name="team")
    Membership.objects.create(project=team, user=user, role=Role.OWNER)
    Membership.objects.create(pk=KNOWN_ID, project=team, user=other_user, role=Role.MEMBER)
    key, _ = api_key_create(project=team, name="ci", read_only=True, created_by=user)
    ApiKey.objects.filter(pk=key.pk).update(id=KNOWN_ID)
    invitation_create(
        project=team, email="new@example.test", role=Role.MEMBER, invited_by=user, accept_url=""
    )
    Invitation.objects.update(id=KNOWN_ID)
    return Token.objects.create(user=user).key


def api_schema() -> schemathesis.schemas.BaseSchema:
    """The document the server serves at /api/v1/schema/ (generated the same way, at
    collection: it needs the URLs, not the database), bound to the WSGI application."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = get_wsgi_application()
    # A test send that did not go is a documented 502: an answer, not a fault (an
    # operation that does not document it fails status_code_conformance).
    loaded.config.checks.not_a_server_error = NotAServerErrorConfig(
        expected_statuses=["2XX", "3XX", "4XX", "502"]
    )
    loaded.config.seed = 20261130
    loaded.config.generation.update(max_examples=EXAMPLES_PER_OPERATION, no_shrink=True)
    return loaded


schema = api_schema()


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_api_conforms_to_its_schema(case, owned):
    generated = (case.path_parameters or {}).get("id")
    if isinstance(generated, int) and generated % 2 == 0:
        case.path_parameters["id"] = KNOWN_ID
    response = case.call_and_validate(headers={"Authorization": f"Token {owned}"}, checks=CHECKS)
    assert SECRET not in response.text and URL_TOKEN not in response.text


def test_every_operation_documents_its_error_answers():
    document = SchemaGenerator().get_schema(request=None, public=True)
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]

    assert len(operations) > 30
    for path, method, operation in operations:
        codes = set(operation["responses"])
        assert {"401", "406", "429"} <= codes, (method, path)
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        if "{id}" in path:
            assert "404" in codes, (method, path)
        if "requestBody" in operation:
            assert {"400", "403", "409", "415"} <= codes, (method, path)
            assert "application/json" in operation["requestBody"]["content"]
        if method == "delete":
            assert "403" in codes


@pytest.mark.django_db
def test_an_accept_header_without_json_is_a_406(user, redis_client):
    response = token_client(user).get("/api/v1/monitors/", HTTP_ACCEPT="text/html")

    assert response.status_code == 406
    assert "detail" in response.json()


@pytest.mark.django_db
def test_a_path_the_api_does_not_have_is_a_json_404(client):
    response = client.get("/api/v1/monitors/1.5/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert client.get("/no-such-page/")["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize("size", ["0", "-3", "many"])
def test_a_bad_page_size_is_a_400_naming_it(user, size, redis_client):
    response = token_client(user).get(f"/api/v1/incidents/?page_size={size}")

    assert response.status_code == 400
    assert "page_size" in response.json()


@pytest.mark.django_db
def test_a_form_of_too_many_fields_is_a_json_400(user, redis_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    body = "&".join(f"ids={n}" for n in range(50)) + "&action=pause"

    response = token_client(user).generic(
        "POST", "/api/v1/monitors/bulk/", body, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 400
    assert "detail" in response.json()
