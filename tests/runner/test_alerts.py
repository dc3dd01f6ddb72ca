"""Alerts: raised once per condition, delivered by mail and webhook after commit, never raised."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from runner import alerts, execution, monitoring, services
from runner.actors import Actor
from runner.models import Alert, AlertKind, CycleRun
from tests.factories import AgentFactory, AlertFactory
from tests.support.fake_http import FakeServer, Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def webhook(settings):
    with FakeServer(lambda request: Reply(body={})) as server:
        settings.RUNNER_ALERT_WEBHOOK_URL = f"{server.url}/hook"
        settings.RUNNER_ALERT_EMAILS = ["ops@example.com", "oncall@example.com"]
        yield server


def run_scheduled_cycle(agent):
    """One scheduled cycle, claimed and executed as a qcluster worker would."""
    claim = services.cycle_claim_scheduled(agent_id=agent.pk, worker="test:1")
    return execution.execute_claim(claim)


def trip(agent, capture):
    """Start the agent and let its one allowed failure trip the breaker."""
    with capture(execute=True):
        services.agent_start(agent=agent, actor=Actor.cli())
        run = run_scheduled_cycle(agent)
    agent.refresh_from_db()
    assert run.status == "failed" and agent.state == "error"


def test_trip_to_error_notifies_mail_and_webhook_once_while_it_holds(
    webhook, django_capture_on_commit_callbacks
):
    agent = AgentFactory(slug="fails", kind="test-fail", max_consecutive_failures=1)
    trip(agent, django_capture_on_commit_callbacks)

    alert = Alert.objects.get(kind=AlertKind.AGENT_ERROR)
    assert alert.agent == agent and alert.closed_at is None
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com", "oncall@example.com"]
    assert "fails" in message.subject and "tripped to error" in message.subject
    assert "BoomError" in message.body
    assert len(webhook.requests) == 1
    sent = webhook.requests[0].json()
    assert sent["kind"] == "agent_error" and sent["agent"] == "fails" and sent["id"] == alert.pk
    alert.refresh_from_db()
    assert alert.delivery == {"email": "sent", "webhook": "sent: HTTP 200"}
    assert alert.notified_at is not None

    # Restarted and tripped again before the watchdog saw it clear: still one open alert, no repeat.
    trip(agent, django_capture_on_commit_callbacks)
    alert.refresh_from_db()
    assert alert.occurrences == 2
    assert len(mail.outbox) == 1 and len(webhook.requests) == 1

    # Once the agent has left error, the watchdog closes the alert; the next trip notifies again.
    services.agent_start(agent=agent, actor=Actor.cli())
    assert alerts.reconcile()["closed"] == 1
    alert.refresh_from_db()
    assert alert.closed_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        run_scheduled_cycle(agent)
    assert Alert.objects.filter(kind=AlertKind.AGENT_ERROR).count() == 2
    assert len(mail.outbox) == 2 and len(webhook.requests) == 2


def expire_running_run(agent, *, worker):
    """A run whose worker died: claimed, then its lease left to run out."""
    claim = services.cycle_claim_scheduled(agent_id=agent.pk, worker=worker)
    CycleRun.objects.filter(pk=claim.run.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    return claim.run


def test_abandoned_run_alerts_once_until_a_cycle_succeeds(
    webhook, django_capture_on_commit_callbacks
):
    agent = AgentFactory(slug="killed", kind="test-ok", max_consecutive_failures=10)
    services.agent_start(agent=agent, actor=Actor.cli())
    first = expire_running_run(agent, worker="host:4242")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.runs_reap_expired() == 1
    first.refresh_from_db()
    assert first.status == "abandoned"
    alert = Alert.objects.get(kind=AlertKind.RUN_ABANDONED)
    assert alert.run_id == first.pk
    assert len(mail.outbox) == 1 and "abandoned" in mail.outbox[0].subject
    assert "host:4242" in mail.outbox[0].body
    assert webhook.requests[0].json()["run_id"] == first.pk

    # A second abandoned run while the condition holds: counted, not re-sent.
    agent.refresh_from_db()
    services.agent_set_interval(agent=agent, interval_minutes=1, actor=Actor.cli())
    from runner.models import Agent

    Agent.objects.filter(pk=agent.pk).update(next_run=timezone.now())
    expire_running_run(agent, worker="host:4343")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.runs_reap_expired() == 1
    alert.refresh_from_db()
    assert alert.occurrences == 2 and len(mail.outbox) == 1

    # A successful cycle clears the condition.
    Agent.objects.filter(pk=agent.pk).update(next_run=timezone.now())
    assert run_scheduled_cycle(agent).status == "succeeded"
    assert alerts.reconcile()["closed"] == 1


def test_overdue_agent_alerts_once_and_closes_when_on_time(
    webhook, settings, django_capture_on_commit_callbacks
):
    settings.RUNNER_OVERDUE_GRACE_SECONDS = 60
    now = timezone.now()
    agent = AgentFactory(slug="late", state="running", next_run=now - timedelta(seconds=90))
    AgentFactory(state="running", next_run=now - timedelta(seconds=30))  # within grace
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.reconcile(now)["opened"] == 1
        assert alerts.reconcile(now + timedelta(seconds=5))["opened"] == 0
    alert = Alert.objects.get(kind=AlertKind.AGENT_OVERDUE)
    assert alert.agent == agent and alert.occurrences == 2
    assert len(mail.outbox) == 1 and "overdue" in mail.outbox[0].subject
    assert len(webhook.requests) == 1 and webhook.requests[0].json()["kind"] == "agent_overdue"

    agent.next_run = now + timedelta(minutes=5)
    agent.save(update_fields=["next_run"])
    assert alerts.reconcile(now)["closed"] == 1
    assert Alert.objects.get(pk=alert.pk).closed_at is not None


def test_a_failing_webhook_is_recorded_and_never_raised(
    settings, django_capture_on_commit_callbacks
):
    settings.RUNNER_ALERT_EMAILS = []
    with FakeServer(lambda request: Reply(status=500, body={})) as server:
        settings.RUNNER_ALERT_WEBHOOK_URL = f"{server.url}/hook"
        agent = AgentFactory(kind="test-fail", max_consecutive_failures=1)
        trip(agent, django_capture_on_commit_callbacks)
    alert = Alert.objects.get()
    assert alert.delivery["webhook"].startswith("failed: HTTPStatusError")
    assert len(server.requests) == 1 and mail.outbox == []


def test_no_alert_is_sent_when_the_transaction_rolls_back(webhook):
    """Delivery waits for the commit: a raise that is rolled back notifies nobody."""
    from django.db import transaction

    agent = AgentFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        alerts.agent_tripped(agent=agent, reason="test", now=timezone.now())
        raise RuntimeError("roll back")
    assert not Alert.objects.exists()
    assert mail.outbox == [] and webhook.requests == []


def test_watchdog_beats_reaps_and_reconciles(settings):
    settings.RUNNER_ALERT_EMAILS = []
    agent = AgentFactory(kind="test-ok")
    services.agent_start(agent=agent, actor=Actor.cli())
    expire_running_run(agent, worker="gone:1")
    result = monitoring.watchdog()
    assert result["reaped"] == 1
    assert monitoring.last_heartbeat() is not None
    assert Alert.objects.filter(kind=AlertKind.RUN_ABANDONED, closed_at__isnull=True).exists()


def test_a_run_reaped_after_its_deadline_alerts_too(settings, django_capture_on_commit_callbacks):
    """A worker killed long before anyone looked: the run is `timed_out`, the alert still goes."""
    settings.RUNNER_ALERT_EMAILS = ["ops@example.com"]
    agent = AgentFactory(kind="test-ok", max_consecutive_failures=10)
    services.agent_start(agent=agent, actor=Actor.cli())
    run = expire_running_run(agent, worker="host:77")
    CycleRun.objects.filter(pk=run.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.runs_reap_expired() == 1
    assert CycleRun.objects.get(pk=run.pk).status == "timed_out"
    assert len(mail.outbox) == 1 and "reaped as timed_out" in mail.outbox[0].body


def test_an_open_alert_counts_occurrences_until_it_is_closed(
    webhook, django_capture_on_commit_callbacks
):
    open_alert = AlertFactory(kind=AlertKind.AGENT_ERROR)
    agent = open_alert.agent
    with django_capture_on_commit_callbacks(execute=True):
        alerts.agent_tripped(agent=agent, reason="again", now=timezone.now())
    open_alert.refresh_from_db()
    assert open_alert.occurrences == 2 and webhook.requests == []  # not notified again
    assert alerts.close(kind=AlertKind.AGENT_ERROR, agent_id=agent.pk, now=timezone.now()) == 1
    with django_capture_on_commit_callbacks(execute=True):
        alerts.agent_tripped(agent=agent, reason="once more", now=timezone.now())
    assert Alert.objects.filter(agent=agent).count() == 2 and len(webhook.requests) == 1
