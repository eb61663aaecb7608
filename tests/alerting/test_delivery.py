from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import threading
import time

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerting import netguard, services
from alerting.channels import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from alerting.models import (
    AlertRule,
    ChannelHealth,
    Notification,
    NotificationAttempt,
    NotificationChannel,
)
from alerting.tasks import deliver, deliver_many
from monitors.models import Incident, Monitor
from tests.alerting.conftest import T0, check
from tests.factories import (
    AlertRuleFactory,
    MonitorFactory,
    NotificationChannelFactory,
    WebhookChannelFactory,
)

pytestmark = pytest.mark.usefixtures("eager_celery")


def down_rule(*channels: NotificationChannel, monitor: Monitor | None = None) -> AlertRule:
    rule = AlertRuleFactory(monitor=monitor or MonitorFactory(status=Monitor.Status.UP))
    rule.channels.set(channels)
    return rule


def webhook(receiver, path: str = "/ok", **config) -> NotificationChannel:
    return WebhookChannelFactory(config={"url": receiver.url(path), "secret": "s3cret", **config})


@pytest.mark.django_db
def test_it_sends_a_signed_webhook_once_the_outage_is_confirmed_and_when_it_ends(receiver, feed):
    rule = down_rule(webhook(receiver))
    monitor = rule.monitor

    feed([check(monitor, 0, False)])
    assert receiver.requests == []
    feed([check(monitor, 1, False)])
    feed([check(monitor, 2, False)])
    feed([check(monitor, 3, True)])

    down, up = receiver.wait_for(2)
    assert [down.json()["event"], up.json()["event"]] == ["down", "up"]
    incident = Incident.objects.get()
    payload = down.json()
    assert payload["monitor"] == {"id": monitor.pk, "name": monitor.name, "url": monitor.url}
    assert payload["incident"]["id"] == incident.pk
    assert payload["check"]["failure"] == "status" and "is down" in payload["text"]
    assert incident.ended_at is not None
    assert up.json()["incident"]["ended_at"] == incident.ended_at.isoformat()
    # The documented verification: HMAC-SHA256 over "<timestamp>.<raw body>".
    signed = down.headers[TIMESTAMP_HEADER].encode() + b"." + down.body
    expected = hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(down.headers[SIGNATURE_HEADER], f"sha256={expected}")
    assert down.headers[DELIVERY_HEADER] == str(Notification.objects.get(event="down").pk)
    assert len(receiver.wait_for(3, timeout=0.2)) == 2


@pytest.mark.django_db
def test_it_sends_slack_email_and_apprise_notifications(receiver, feed):
    slack = NotificationChannelFactory(kind="slack", config={"url": receiver.url("/slack")})
    email = NotificationChannelFactory(config={"address": "ops@example.test"})
    apprise = NotificationChannelFactory(
        kind="apprise", config={"url": f"json://127.0.0.1:{receiver.port}/apprise"}
    )
    rule = down_rule(slack, email, apprise)
    rule.monitor.confirm_failures = 1
    rule.monitor.save()

    feed([check(rule.monitor, 0, False)])

    got = {r.path: r for r in receiver.wait_for(2)}
    assert "is down" in got["/slack"].json()["text"]
    assert got["/apprise"].json()["title"].startswith("DOWN:")
    assert mail.outbox[0].to == ["ops@example.test"] and "DOWN" in mail.outbox[0].subject
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db
def test_the_guard_blocks_a_webhook_whose_name_resolves_to_a_private_address(
    receiver, feed, fake_dns, connect_log
):
    fake_dns["hooks.example.test"] = "10.20.30.40"
    rule = down_rule(WebhookChannelFactory(config={"url": "http://hooks.example.test/hook"}))
    rule.monitor.confirm_failures = 1
    rule.monitor.save()

    feed([check(rule.monitor, 0, False)])

    notification = Notification.objects.get()
    assert notification.status == "failed" and notification.attempts == 1  # not retried
    assert "10.20.30.40" in notification.error and "not a public address" in notification.error
    assert not any(address[0] == "10.20.30.40" for address in connect_log)


@pytest.mark.django_db
def test_the_guard_blocks_a_private_apprise_target(fake_dns, connect_log):
    fake_dns["gotify.example.test"] = "192.168.7.7"
    channel = NotificationChannelFactory(
        kind="apprise", config={"url": "json://gotify.example.test:8080/x"}
    )

    notification = services.channel_send_test(channel=channel)

    assert notification.status == "failed" and "192.168.7.7" in notification.error
    assert not any(address[0] == "192.168.7.7" for address in connect_log)


@pytest.mark.django_db
def test_the_guard_lets_an_allowed_network_through_by_name(receiver, fake_dns, settings):
    fake_dns["hooks.example.test"] = "127.0.0.1"
    channel = WebhookChannelFactory(config={"url": receiver.url("/ok", host="hooks.example.test")})

    settings.SENTINEL_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert services.channel_send_test(channel=channel).status == "sent"
    settings.SENTINEL_ALLOWED_NETWORKS = []
    assert services.channel_send_test(channel=channel).status == "failed"
    settings.SENTINEL_ALLOW_PRIVATE_TARGETS = True
    assert services.channel_send_test(channel=channel).status == "sent"
    assert len(receiver.requests) == 2


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1::1", True),
        ("10.1.2.3", False),
        ("169.254.169.254", False),
        ("::ffff:192.168.1.1", False),
        ("fd00::1", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("64:ff9b::a00:5", False),  # NAT64 of 10.0.0.5: the probe guard's rule, now shared
        ("198.18.0.1", False),
    ],
)
def test_the_guard_allows_only_public_addresses_by_default(address, allowed, settings):
    settings.SENTINEL_ALLOWED_NETWORKS = []
    settings.SENTINEL_ALLOW_PRIVATE_TARGETS = False

    assert netguard.address_allowed(ipaddress.ip_address(address)) is allowed


def test_notifications_and_checks_share_one_address_policy(settings):
    from core.netpolicy import BLOCKED_NETWORKS, TargetPolicy

    settings.SENTINEL_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    settings.SENTINEL_ALLOW_PRIVATE_TARGETS = False
    probe = TargetPolicy.from_settings()
    addresses = [net.network_address + 1 for net in BLOCKED_NETWORKS]
    addresses += [ipaddress.ip_address(a) for a in ("10.1.2.3", "8.8.8.8", "2001:4860::8888")]

    for address in addresses:
        assert netguard.address_allowed(address) is (probe.refusal(str(address)) is None)
    assert netguard.address_allowed(ipaddress.ip_address("10.1.2.3"))


@pytest.mark.django_db
def test_it_retries_a_transient_failure_and_records_each_attempt(receiver, feed):
    rule = down_rule(webhook(receiver, "/flaky/2"))
    rule.monitor.confirm_failures = 1
    rule.monitor.save()

    feed([check(rule.monitor, 0, False)])

    notification = Notification.objects.get()
    assert (notification.status, notification.attempts) == ("sent", 3)
    attempts = NotificationAttempt.objects.filter(notification=notification)
    assert [(a.ok, a.transient, a.error) for a in attempts] == [
        (False, True, "HTTP 503"),
        (False, True, "HTTP 503"),
        (True, False, ""),
    ]
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_in_a_batch_only_the_transient_failure_is_retried(receiver, feed):
    flaky, fine, gone = (
        webhook(receiver, "/flaky/1"),
        webhook(receiver),
        webhook(receiver, "/status/410"),
    )
    rule = down_rule(flaky, fine, gone)
    Monitor.objects.filter(pk=rule.monitor_id).update(confirm_failures=1)

    feed([check(rule.monitor, 0, False)])  # one task for the three; the retry is another

    rows = {n.channel_id: n for n in Notification.objects.all()}
    assert (rows[flaky.pk].status, rows[flaky.pk].attempts) == ("sent", 2)
    assert (rows[fine.pk].status, rows[fine.pk].attempts) == ("sent", 1)
    assert (rows[gone.pk].status, rows[gone.pk].attempts, rows[gone.pk].error) == (
        "failed",
        1,
        "HTTP 410",
    )
    assert sorted(r.path for r in receiver.requests) == ["/flaky/1", "/ok"]


@pytest.mark.django_db
def test_it_does_not_retry_a_permanent_failure(receiver):
    channel = webhook(receiver, "/status/404")

    notification = services.channel_send_test(channel=channel)

    assert (notification.status, notification.attempts, notification.error) == (
        "failed",
        1,
        "HTTP 404",
    )
    assert ChannelHealth.objects.get(pk=channel.pk).consecutive_failures == 1


@pytest.mark.django_db
def test_a_redelivered_task_sends_once(receiver, feed, monkeypatch):
    queued: list[list[int]] = []
    monkeypatch.setattr(deliver_many, "delay", queued.append)
    rule = down_rule(webhook(receiver))
    rule.monitor.confirm_failures = 1
    rule.monitor.save()
    feed([check(rule.monitor, 0, False)])
    # The probe batch is replayed too (its task was redelivered): no second row.
    feed([check(rule.monitor, 0, False)])
    [[notification_id]] = queued

    for _ in range(3):  # the broker redelivers the task twice more
        deliver_many.apply(args=([notification_id],))
    deliver.apply(args=(notification_id,))  # and the one-notification task of old

    assert len(receiver.wait_for(2, timeout=0.3)) == 1
    assert Notification.objects.get().attempts == 1


class WorkerKilled(BaseException):
    """What kill -9 leaves behind: the send went out (or not), nothing was recorded."""


def in_doubt(receiver, monkeypatch, *, sent: bool) -> Notification:
    """A notification whose delivery task died after its claim: after the send
    (``sent``) or before it, and in both cases before recording anything."""
    from alerting.services import delivery

    notification = Notification.objects.create(
        channel=webhook(receiver), event="test", dedup_key="test:killed", payload={"event": "t"}
    )
    if sent:
        monkeypatch.setattr(delivery, "_outcomes_record", _die)
    else:
        monkeypatch.setattr(delivery, "_send_one", _die)
    with pytest.raises(WorkerKilled):
        services.notification_deliver(notification_id=notification.pk)
    monkeypatch.undo()
    return notification


def _die(*args, **kwargs):
    raise WorkerKilled


def sweep_after_the_lease(django_capture_on_commit_callbacks) -> dict[str, int]:
    with django_capture_on_commit_callbacks(execute=True):
        return services.alerts_sweep(now=timezone.now() + dt.timedelta(minutes=5))


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_a_send_in_doubt_after_a_killed_worker_is_sent_again_with_the_same_delivery_id(
    receiver, monkeypatch, django_capture_on_commit_callbacks
):
    notification = in_doubt(receiver, monkeypatch, sent=True)
    assert Notification.objects.get().status == "sending"
    assert len(receiver.wait_for(1)) == 1

    swept = sweep_after_the_lease(django_capture_on_commit_callbacks)

    first, again = receiver.wait_for(2)
    delivery_id = str(notification.pk)
    assert first.headers[DELIVERY_HEADER] == again.headers[DELIVERY_HEADER] == delivery_id
    assert first.json()["delivery_id"] == again.json()["delivery_id"] == delivery_id
    notification.refresh_from_db()
    assert (notification.status, notification.resends_in_doubt) == ("sent", 1)
    assert notification.attempts == 2
    assert swept["resent_in_doubt"] == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_a_send_the_killed_worker_never_made_arrives_once(
    receiver, monkeypatch, django_capture_on_commit_callbacks
):
    in_doubt(receiver, monkeypatch, sent=False)
    assert receiver.wait_for(1, timeout=0.2) == []

    sweep_after_the_lease(django_capture_on_commit_callbacks)

    assert len(receiver.wait_for(2, timeout=0.5)) == 1
    assert Notification.objects.get().status == "sent"


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_a_recorded_notification_is_never_sent_again(receiver, django_capture_on_commit_callbacks):
    notification = Notification.objects.create(
        channel=webhook(receiver), event="test", dedup_key="test:done", payload={}
    )
    services.notification_deliver(notification_id=notification.pk)
    assert len(receiver.wait_for(1)) == 1

    swept = sweep_after_the_lease(django_capture_on_commit_callbacks)

    assert len(receiver.wait_for(2, timeout=0.3)) == 1
    assert swept["resent_in_doubt"] == 0
    assert Notification.objects.get().resends_in_doubt == 0


@pytest.mark.django_db
def test_a_send_still_within_its_lease_is_left_to_its_worker(receiver, monkeypatch):
    in_doubt(receiver, monkeypatch, sent=True)

    swept = services.alerts_sweep(now=timezone.now() + dt.timedelta(seconds=30))

    assert swept["resent_in_doubt"] == 0
    assert Notification.objects.get().status == "sending"


@pytest.mark.django_db
def test_the_delivery_id_is_the_same_across_retries(receiver, eager_celery):
    notification = Notification.objects.create(
        channel=webhook(receiver, "/flaky/1"), event="test", dedup_key="test:flaky", payload={}
    )

    deliver_many.apply(args=([notification.pk],))  # 503 once, then the retry succeeds

    first, retry = receiver.every_request
    assert first.headers[DELIVERY_HEADER] == retry.headers[DELIVERY_HEADER] == str(notification.pk)
    assert first.json()["delivery_id"] == retry.json()["delivery_id"] == str(notification.pk)
    assert Notification.objects.get().status == "sent"


@pytest.mark.django_db
def test_a_send_that_kills_its_worker_every_time_is_given_up(
    receiver, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.SENTINEL_NOTIFY_MAX_RETRIES = 0
    in_doubt(receiver, monkeypatch, sent=True)

    swept = sweep_after_the_lease(django_capture_on_commit_callbacks)

    assert (swept["resent_in_doubt"], swept["given_up"]) == (0, 1)
    assert Notification.objects.get().status == "failed"


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_metrics_count_sends_in_doubt(
    receiver, monkeypatch, client, settings, django_capture_on_commit_callbacks, redis_client
):
    settings.SENTINEL_METRICS_TOKEN = "scrape-token"
    in_doubt(receiver, monkeypatch, sent=True)
    sweep_after_the_lease(django_capture_on_commit_callbacks)

    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token").content.decode()

    assert "sentinel_notification_resends_in_doubt_total 1.0" in text
    assert 'sentinel_notifications{status="sent"} 1.0' in text


# Two deliveries race from two threads with their own connections, so the rows must
# be committed (transaction=True) for both to see them.
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_on_one_notification_send_it_once(receiver):
    notification = Notification.objects.create(
        channel=webhook(receiver), event="test", dedup_key="test:race", payload={}
    )
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        services.notification_deliver(notification_id=notification.pk)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(receiver.wait_for(2, timeout=0.3)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_broken_channel_does_not_block_a_healthy_one(receiver, settings, monkeypatch):
    """One task, two channels: the sends run side by side, so with a hanging endpoint on
    one the other delivers at once and is recorded before the hanging one times out."""
    settings.SENTINEL_NOTIFY_TIMEOUT_SECONDS = 2
    settings.SENTINEL_NOTIFY_MAX_RETRIES = 0
    settings.SENTINEL_CHANNEL_UNHEALTHY_AFTER = 1
    queued: list[list[int]] = []
    monkeypatch.setattr(deliver_many, "delay", queued.append)
    broken, healthy = webhook(receiver, "/hang/4"), webhook(receiver, "/ok")
    rule = down_rule(broken, healthy)
    Monitor.objects.filter(pk=rule.monitor_id).update(confirm_failures=1)
    results = [check(rule.monitor, 0, False)]
    services.alerts_process(
        results=results, changes=services_apply(results)
    )  # commits: on_commit runs
    [batch] = queued
    assert len(batch) == 2
    started = time.monotonic()

    thread = threading.Thread(target=run_task, args=(batch,))
    thread.start()
    [healthy_request] = receiver.wait_for(1)
    assert healthy_request.at - started < 0.8
    time.sleep(services.DELIVERY_ROUND_SECONDS + 0.5)
    assert Notification.objects.get(channel=healthy).status == "sent"
    assert Notification.objects.get(channel=broken).status == "sending"
    thread.join()

    by_channel = {n.channel_id: n for n in Notification.objects.all()}
    assert by_channel[healthy.pk].status == "sent"
    assert by_channel[broken.pk].status == "failed" and "Timeout" in by_channel[broken.pk].error
    assert ChannelHealth.objects.get(pk=broken.pk).unhealthy_since is not None
    assert not ChannelHealth.objects.filter(pk=healthy.pk, unhealthy_since__isnull=False).exists()


@pytest.mark.django_db
def test_a_channel_known_to_be_unhealthy_gets_tasks_of_its_own_queued_last(
    receiver, feed, monkeypatch
):
    queued: list[list[int]] = []
    monkeypatch.setattr(deliver_many, "delay", queued.append)
    broken, first, second = webhook(receiver), webhook(receiver), webhook(receiver)
    ChannelHealth.objects.create(channel=broken, consecutive_failures=9, unhealthy_since=T0)
    rules = [down_rule(broken, first, second) for _ in range(2)]
    Monitor.objects.filter(pk__in=[r.monitor_id for r in rules]).update(confirm_failures=1)

    feed([check(rule.monitor, 0, False) for rule in rules])

    ids = dict(Notification.objects.values_list("pk", "channel_id"))
    assert [[ids[pk] for pk in batch] for batch in queued] == [
        [first.pk, second.pk, first.pk, second.pk],
        [broken.pk],
        [broken.pk],
    ]


@pytest.mark.django_db
def test_a_batch_is_sent_side_by_side_with_a_few_statements_in_all(receiver, feed, monkeypatch):
    queued: list[list[int]] = []
    monkeypatch.setattr(deliver_many, "delay", queued.append)
    rules = [down_rule(webhook(receiver, "/hang/0.5")) for _ in range(8)]
    Monitor.objects.filter(pk__in=[r.monitor_id for r in rules]).update(confirm_failures=1)
    feed([check(rule.monitor, 0, False) for rule in rules])
    [batch] = queued
    started = time.monotonic()

    with CaptureQueriesContext(connection) as queries:
        deliver_many.apply(args=(batch,))

    assert time.monotonic() - started < 2.0  # one after the other: 4 s
    assert len(receiver.requests) == 8
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert NotificationAttempt.objects.filter(ok=True).count() == 8
    # Claim, read back, attempts, "sent": not four statements per notification.
    assert len(queries.captured_queries) <= 5, [q["sql"][:60] for q in queries]


def services_apply(results):
    from monitors.state import monitors_apply_results

    return monitors_apply_results(results=results)


def run_task(notification_ids: list[int]) -> None:
    deliver_many.apply(args=(notification_ids,))
    connection.close()


@pytest.mark.django_db
def test_the_api_sends_a_test_notification_through_your_own_channel_only(
    receiver, client, user, other_user
):
    mine = webhook(receiver)
    mine.owner, mine.project = user, user.personal_project
    mine.save()
    theirs = WebhookChannelFactory(owner=other_user)
    client.force_login(user)

    response = client.post(f"/api/v1/alerting/channels/{mine.pk}/test")
    refused = client.post(f"/api/v1/alerting/channels/{theirs.pk}/test")

    assert response.status_code == 200 and response.json()["status"] == "sent"
    assert receiver.wait_for(1)[0].json()["event"] == "test"
    assert refused.status_code == 404


@pytest.mark.django_db
def test_the_admin_action_sends_a_test_notification(receiver, admin_client):
    channel = webhook(receiver, "/status/500")

    response = admin_client.post(
        "/admin/alerting/notificationchannel/",
        {"action": "send_test_notification", "_selected_action": [channel.pk]},
        follow=True,
    )

    assert "HTTP 500" in response.content.decode()
    assert Notification.objects.get(channel=channel).attempt_log.count() == 1


def test_inside_the_guard_a_socket_may_only_connect_to_an_allowed_address(settings):
    # Checked directly, not with a real connect: a failing guard must not send a packet.
    settings.SENTINEL_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.SENTINEL_ALLOW_PRIVATE_TARGETS = False
    netguard.check_sockaddr(("10.9.8.7", 80))  # outside guarded(): not our business

    with netguard.guarded():
        netguard.check_sockaddr(("127.0.0.1", 80))
        netguard.check_sockaddr(("93.184.216.34", 443))
        for address in [("10.9.8.7", 80), ("fe80::1%eth0", 80, 0, 0), ("syslog.test", 514)]:
            with pytest.raises(netguard.Blocked):
                netguard.check_sockaddr(address)

    assert "without a checked lookup" in (netguard.blocked_reason() or "")
