from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.db import IN_LIST_MAX, ascending_chunks, lock_in_key_order
from monitors.models import Monitor
from tests.factories import MonitorFactory


def test_keys_come_sorted_without_repeats_in_chunks_below_the_limit():
    chunks = list(ascending_chunks([5, 3, 3, *range(1200, 0, -1)]))

    assert [len(c) for c in chunks] == [IN_LIST_MAX, IN_LIST_MAX, 200]
    flat = [key for chunk in chunks for key in chunk]
    assert flat == list(range(1, 1201))


@pytest.mark.django_db
def test_a_long_key_list_is_locked_in_ascending_statements_below_the_limit():
    template = MonitorFactory()
    fields = {f.attname: getattr(template, f.attname) for f in Monitor._meta.concrete_fields}
    fields.pop("id")
    Monitor.objects.bulk_create(
        [Monitor(**{**fields, "name": f"m{n}"}) for n in range(1100)], batch_size=500
    )
    ids = list(Monitor.objects.values_list("pk", flat=True))

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        rows = lock_in_key_order(Monitor.objects.all(), "pk", reversed(ids))

    assert [row.pk for row in rows] == sorted(ids)
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 3 and all(s.endswith("FOR UPDATE") for s in statements)
    # Each statement's keys are above the previous one's: locks go up the index.
    firsts = [int(s.split(" IN (")[1].split(",")[0]) for s in statements]
    assert firsts == sorted(firsts)
