from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from configfiles.models import ConfigApply
from monitors.models import Monitor
from monitors.services import monitor_create

pytestmark = pytest.mark.django_db

FILE = """\
version: 1
monitors:
  - name: home
    url: https://127.0.0.1/
    interval_seconds: 120
"""


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_it_exports_the_users_own_objects_as_yaml_and_json(api, user, other_user):
    monitor_create(owner=user, name="mine", url="https://127.0.0.1/mine")
    monitor_create(owner=other_user, name="theirs", url="https://127.0.0.1/theirs")
    response = api.get("/api/v1/config/export")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    assert b"name: mine" in response.content and b"theirs" not in response.content
    as_json = api.get("/api/v1/config/export?format=json")
    assert as_json.json()["monitors"][0]["name"] == "mine"


def test_it_previews_then_applies_a_posted_file(api, user):
    preview = api.post("/api/v1/config/apply?dry_run=1", FILE, content_type="application/yaml")
    assert preview.status_code == 200
    assert preview.json()["dry_run"] is True
    assert preview.json()["changes"][0] == {
        "action": "create",
        "kind": "monitor",
        "name": "home",
        "details": [],
    }
    assert not Monitor.objects.exists()
    applied = api.post("/api/v1/config/apply", FILE, content_type="application/yaml")
    assert applied.json()["changed"] is True
    assert Monitor.objects.get(owner=user).interval_seconds == 120
    record = ConfigApply.objects.get()
    assert record.applied_by == user and record.source == "api" and record.created == 1
    again = api.post("/api/v1/config/apply", FILE, content_type="application/yaml")
    assert again.json()["changed"] is False


def test_it_answers_400_with_the_lines_of_a_bad_file(api):
    bad = FILE.replace("interval_seconds: 120", "interval_seconds: lots")
    response = api.post("/api/v1/config/apply", bad, content_type="application/yaml")
    assert response.status_code == 400
    assert response.json()["errors"][0]["line"] == 5
    assert response.json()["errors"][0]["path"] == 'monitors[0] "home".interval_seconds'
    assert not Monitor.objects.exists()


def test_it_refuses_a_bad_query_parameter(api):
    response = api.post("/api/v1/config/apply?dry_run=perhaps", FILE, content_type="text/plain")
    assert response.status_code == 400
    assert "dry_run" in response.json()


def test_it_needs_a_signed_in_user():
    client = APIClient()
    assert client.get("/api/v1/config/export").status_code in (401, 403)
    assert client.post(
        "/api/v1/config/apply", FILE, content_type="application/yaml"
    ).status_code in (401, 403)


def test_the_schema_documents_the_config_endpoints(api):
    schema = api.get("/api/v1/schema/?format=json").json()
    assert "/api/v1/config/apply" in schema["paths"]
    responses = schema["paths"]["/api/v1/config/apply"]["post"]["responses"]
    assert {"200", "400"} <= set(responses)


def test_it_refuses_a_file_over_the_size_limit(api):
    from configfiles.api import MAX_FILE_BYTES

    body = "version: 1\n" + "#" * MAX_FILE_BYTES
    response = api.post("/api/v1/config/apply", body, content_type="application/yaml")
    assert response.status_code == 400
    assert "larger than 5 MiB" in response.json()["detail"]


def test_it_answers_409_while_another_apply_to_the_same_objects_runs(api, user, monkeypatch):
    from django.db import connections

    from configfiles import apply
    from configfiles.scope import scope_for_owner

    monkeypatch.setattr(apply, "APPLY_WAIT_SECONDS", 0)
    other = connections.create_connection("default")
    name = f"{other.settings_dict['NAME']}.{scope_for_owner(user).lock_name()}"[-64:]
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0)", [name])
            assert cursor.fetchone() == (1,)
            response = api.post("/api/v1/config/apply", FILE, content_type="application/yaml")
            assert response.status_code == 409
            assert "another apply to project" in response.json()["errors"][0]["message"]
            assert not Monitor.objects.exists()
            cursor.execute("SELECT RELEASE_LOCK(%s)", [name])
        applied = api.post("/api/v1/config/apply", FILE, content_type="application/yaml")
        assert applied.status_code == 200
    finally:
        other.close()


def test_it_answers_409_in_json_when_two_monitors_share_a_name(api, user):
    monitor_create(owner=user, name="twin", url="https://127.0.0.1/a")
    monitor_create(owner=user, name="twin", url="https://127.0.0.1/b")
    response = api.get("/api/v1/config/export")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/json"
    assert "2 are named 'twin'" in response.json()["errors"][0]["message"]
