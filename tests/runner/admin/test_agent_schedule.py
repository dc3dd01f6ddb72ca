"""The admin's calendar and policy fields, the agent page's fire times, run once with overrides."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from runner.models import AuditEvent, CycleRun
from tests.factories import AgentFactory, UserFactory

pytestmark = pytest.mark.django_db

FORM = {
    "name": "Alpha",
    "kind": "test-ok",
    "parameters": "{}",
    "interval_minutes": "60",
    "timeout_seconds": "300",
    "max_consecutive_failures": "3",
    "trading_mode": "dry_run",
    "schedule_kind": "cron",
    "cron": "0 9 * * mon-fri",
    "timezone": "Europe/London",
    "jitter_seconds": "30",
    "active_windows": "[]",
    "overlap_policy": "cancel_previous",
    "catchup_policy": "latest",
    "catchup_window_minutes": "60",
    "retry_attempts": "1",
    "retry_backoff_seconds": "10",
    "retry_on": "failed",
}


def change_url(agent):
    return reverse("admin:runner_agent_change", args=[agent.pk])


def test_the_form_edits_the_schedule_and_policies_audited(admin_client):
    agent = AgentFactory(name="Alpha")
    response = admin_client.post(change_url(agent), FORM)
    assert response.status_code == 302, response.content.decode()[:1500]
    agent.refresh_from_db()
    assert (agent.cron, agent.overlap_policy, agent.retry_on) == (
        "0 9 * * mon-fri",
        "cancel_previous",
        "failed",
    )
    event = AuditEvent.objects.get(agent=agent)
    assert event.source == "admin" and event.changes["timezone"]["after"] == "Europe/London"

    page = admin_client.get(change_url(agent)).content.decode()
    assert 'id="runner-fire-times"' in page
    assert page.count("T09:00:") >= 5 or page.count("T08:00:") + page.count("T09:00:") >= 5
    assert "cron “0 9 * * mon-fri” in Europe/London" in page


def test_a_cron_that_cannot_be_read_is_a_form_error_and_changes_nothing(admin_client):
    agent = AgentFactory(name="Alpha")
    response = admin_client.post(change_url(agent), {**FORM, "cron": "at nine"})
    assert response.status_code == 200
    assert "five-field" in str(response.context["adminform"].form.errors["cron"])
    agent.refresh_from_db()
    assert agent.schedule_kind == "interval"


def test_run_once_button_with_parameter_overrides(client):
    user = UserFactory(username="op", perms=["runner.view_agent", "runner.control_agent"])
    client.force_login(user)
    agent = AgentFactory(kind="test-ok", parameters={"value": 1})
    url = reverse("admin:runner_agent_control", args=[agent.pk])
    page = client.get(change_url(agent)).content.decode()
    assert 'name="parameters"' in page
    response = client.post(url, {"action": "run_once", "parameters": '{"value": 4}'})
    assert response.status_code == 302
    assert CycleRun.objects.get(agent=agent).parameter_overrides == {"value": 4}
    refused = client.post(url, {"action": "run_once", "parameters": "{value}"})
    messages = [str(m) for m in get_messages(refused.wsgi_request)]
    assert any("Run once refused: parameters must be a JSON object" in m for m in messages)
    assert CycleRun.objects.filter(agent=agent).count() == 1
    assert AuditEvent.objects.filter(agent=agent, outcome="refused").count() == 1
