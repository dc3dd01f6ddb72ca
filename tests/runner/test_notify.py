"""Alert notifications through Apprise to the chat and paging services teams use, one per state
change (opened, then closed), each against a local fake receiver.

Apprise formats and sends each message itself (its own requests, over real sockets). Services whose
URL names a host (json://, and Microsoft Teams through Power Automate workflows://) point at the
fake server directly, the latter over https with a throwaway certificate authority that requests
is told to trust. Slack, Discord, Telegram and PagerDuty have their host built in: there the
plugin's base URL attribute is pointed at the fake server, so nothing ever leaves this machine.
"""

from __future__ import annotations

import json
import ssl

import pytest
import trustme
from apprise.plugins import discord, pagerduty, slack, telegram
from django.core import mail
from django.utils import timezone

from runner import alerts, execution, notify, services
from runner.actors import Actor
from runner.models import Alert, AlertKind
from tests.factories import AgentFactory
from tests.support.fake_http import FakeServer, Reply

pytestmark = pytest.mark.django_db

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops"
DISCORD = "discord://1234567890/abcdefWEBHOOKtoken"
TELEGRAM = "tgram://123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQ/-1001234567890/"
PAGERDUTY = "pagerduty://INTEGRATIONKEY0123@APIKEY0123/?action=map"


def service_reply(request) -> Reply:
    """What each service answers a message it took."""
    if request.path.startswith("/services/"):
        return Reply(body="ok", headers={"Content-Type": "text/plain"})
    if request.path.startswith("/api/webhooks/"):
        return Reply(status=204)
    if request.path.startswith("/bot"):
        return Reply(body={"ok": True, "result": {"message_id": 1}})
    if request.path == "/v2/enqueue":
        return Reply(status=202, body={"status": "success", "message": "Event processed"})
    return Reply(body={})


@pytest.fixture
def receivers(settings, monkeypatch, tmp_path):
    """One fake server for the http services, one https server for Teams workflows."""
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(tls)
    with (
        FakeServer(service_reply) as http,
        FakeServer(lambda request: Reply(status=202), tls=tls) as teams,
    ):
        monkeypatch.setattr(slack.NotifySlack, "webhook_url", f"{http.url}/services")
        monkeypatch.setattr(discord.NotifyDiscord, "notify_url", f"{http.url}/api/webhooks")
        monkeypatch.setattr(telegram.NotifyTelegram, "notify_url", f"{http.url}/bot")
        monkeypatch.setitem(pagerduty.PAGERDUTY_API_LOOKUP, "us", f"{http.url}/v2/enqueue")
        settings.RUNNER_ALERT_URLS = ", ".join(
            [
                SLACK,
                f"workflows://127.0.0.1:{teams.port}/WORKFLOWID0123/SIGNATURE0123/",
                DISCORD,
                TELEGRAM,
                PAGERDUTY,
                f"json://127.0.0.1:{http.port}/alerts",
            ]
        )
        yield http, teams


def posted(server, prefix):
    return [request for request in server.requests if request.path.startswith(prefix)]


def trip_and_recover(capture):
    """An agent trips to error (the alert opens), is started again and the watchdog closes it."""
    agent = AgentFactory(slug="flaky", kind="test-fail", max_consecutive_failures=1)
    with capture(execute=True):
        services.agent_start(agent=agent, actor=Actor.cli())
        claim = services.cycle_claim_scheduled(agent_id=agent.pk, worker="test:1")
        execution.execute_claim(claim)
    alert = Alert.objects.get(kind=AlertKind.AGENT_ERROR)
    opened_delivery = dict(alert.delivery)
    services.agent_start(agent=agent, actor=Actor.cli())
    with capture(execute=True):
        assert alerts.reconcile()["closed"] == 1
    alert.refresh_from_db()
    return alert, opened_delivery


def test_every_apprise_channel_gets_one_message_when_the_alert_opens_and_one_when_it_closes(
    receivers, django_capture_on_commit_callbacks
):
    http, teams = receivers
    alert, opened = trip_and_recover(django_capture_on_commit_callbacks)

    # Two messages per service: the opening and the closing, nothing else.
    slack_posts = posted(http, "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ")
    discord_posts = posted(http, "/api/webhooks/1234567890/abcdefWEBHOOKtoken")
    telegram_posts = posted(http, "/bot123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQ/sendMessage")
    pagerduty_posts = posted(http, "/v2/enqueue")
    json_posts = posted(http, "/alerts")
    for posts in (slack_posts, discord_posts, telegram_posts, pagerduty_posts, json_posts):
        assert len(posts) == 2, [request.path for request in http.requests]
    assert len(teams.requests) == 2 and teams.requests[0].path.startswith(
        "/workflows/WORKFLOWID0123/triggers/manual/paths/invoke"
    )
    assert len(http.requests) == 10

    # Each service got the alert's own words, as its own format carries them.
    for posts in (slack_posts, discord_posts, telegram_posts, json_posts):
        assert "flaky tripped to error" in posts[0].body.decode()
        assert "Resolved: Agent flaky tripped to error" in posts[1].body.decode()
    assert "flaky tripped to error" in teams.requests[0].body.decode()
    assert "Resolved" in teams.requests[1].body.decode()
    assert json.loads(telegram_posts[0].body)["chat_id"] == -1001234567890
    plain = [request.json() for request in json_posts]
    assert [message["type"] for message in plain] == ["failure", "success"]
    assert (
        plain[0]["title"]
        == plain[1]["title"]
        == f"[agent-runner] {alert.subject} (alert {alert.pk})"
    )

    # PagerDuty: the opening triggers an incident, the closing resolves that same incident.
    trigger, resolve = (request.json() for request in pagerduty_posts)
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["routing_key"] == "INTEGRATIONKEY0123"
    assert trigger["payload"]["severity"] == "critical"

    # The alert records what each service answered, for each change, without its tokens.
    assert len(opened["apprise"]) == 6 and set(opened["apprise"].values()) == {"sent"}
    assert set(alert.delivery["closed"]["apprise"].values()) == {"sent"}
    recorded = json.dumps(alert.delivery)
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in recorded and "abcdefWEBHOOKtoken" not in recorded
    assert alert.closed_at is not None


def test_mail_and_the_plain_webhook_also_say_when_the_alert_closes(
    settings, django_capture_on_commit_callbacks
):
    with FakeServer(lambda request: Reply(body={})) as hook:
        settings.RUNNER_ALERT_WEBHOOK_URL = f"{hook.url}/hook"
        settings.RUNNER_ALERT_EMAILS = ["ops@example.com"]
        alert, opened = trip_and_recover(django_capture_on_commit_callbacks)
    assert [message.subject for message in mail.outbox] == [
        f"[agent-runner] {alert.subject}",
        f"[agent-runner] Resolved: {alert.subject}",
    ]
    first, second = (request.json() for request in hook.requests)
    assert first["state"] == "open" and first["closed_at"] is None
    assert second["state"] == "closed" and second["id"] == first["id"] == alert.pk
    assert second["closed_at"] == alert.closed_at.isoformat()
    assert opened == {"email": "sent", "webhook": "sent: HTTP 200"}
    assert alert.delivery["closed"] == {"email": "sent", "webhook": "sent: HTTP 200"}


def test_a_service_that_refuses_or_a_bad_url_is_recorded_and_never_raised(
    settings, django_capture_on_commit_callbacks
):
    with FakeServer(lambda request: Reply(status=500, body={"error": "down"})) as broken:
        settings.RUNNER_ALERT_URLS = f"json://127.0.0.1:{broken.port}/alerts notaservice://x"
        agent = AgentFactory(slug="watched")
        with django_capture_on_commit_callbacks(execute=True):
            alerts.agent_tripped(agent=agent, reason="test", now=timezone.now())
    alert = Alert.objects.get()
    results = alert.delivery["apprise"]
    assert len(broken.requests) == 1
    assert results == {
        f"1: json://127.0.0.1:{broken.port}/alerts": "failed: the service refused it (see the log)",
        "2: notaservice://": "failed: not a valid Apprise URL",
    }
    assert alert.notified_at is not None


def test_an_overdue_alert_is_a_warning_and_the_others_failures():
    agent = AgentFactory()
    now = timezone.now()
    overdue = Alert(kind=AlertKind.AGENT_OVERDUE, agent=agent, subject="late", message="m")
    overdue.opened_at = now
    tripped = Alert(kind=AlertKind.AGENT_ERROR, agent=agent, subject="error", message="m")
    tripped.opened_at = now
    assert notify.notice(overdue, notify.OPENED).apprise_type == "warning"
    assert notify.notice(tripped, notify.OPENED).apprise_type == "failure"
