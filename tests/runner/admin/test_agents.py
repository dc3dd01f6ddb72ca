"""Agent configuration in the admin: edits, creation and deletion go through the services."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from runner.models import Agent, AuditEvent, CycleRun
from tests.factories import AgentFactory, CycleRunFactory, UserFactory

pytestmark = pytest.mark.django_db


def change_url(agent):
    return reverse("admin:runner_agent_change", args=[agent.pk])


def messages_of(response):
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def test_config_edit_is_an_audit_event_with_before_and_after(admin_client, admin_user):
    agent = AgentFactory(name="Old", interval_minutes=60, state="running")
    data = {
        "name": "New name",
        "kind": "test-ok",
        "parameters": '{"value": 3}',
        "interval_minutes": "30",
        "timeout_seconds": "300",
        "max_consecutive_failures": "3",
        "trading_mode": "dry_run",
        "audit_reason": "faster cycles",
        # the runner state in the POST is ignored: those fields are read-only
        "state": "error",
        "run_count": "999",
    }
    response = admin_client.post(change_url(agent), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    agent.refresh_from_db()
    assert (agent.name, agent.interval_minutes, agent.parameters) == ("New name", 30, {"value": 3})
    assert agent.state == "running" and agent.run_count == 0
    event = AuditEvent.objects.get(agent=agent)
    assert (event.action, event.outcome, event.source) == ("configure", "applied", "admin")
    assert event.actor == admin_user and event.reason == "faster cycles"
    assert event.changes == {
        "name": {"before": "Old", "after": "New name"},
        "interval_minutes": {"before": 60, "after": 30},
        "parameters": {"before": {}, "after": {"value": 3}},
    }


def test_invalid_config_edit_shows_field_errors_and_changes_nothing(admin_client):
    agent = AgentFactory(interval_minutes=60)
    data = {
        "name": agent.name,
        "kind": "test-ok",
        "parameters": '{"value": "not a number"}',
        "interval_minutes": "20000",
        "timeout_seconds": "300",
        "max_consecutive_failures": "3",
        "trading_mode": "live",
    }
    response = admin_client.post(change_url(agent), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "interval_minutes" in errors
    assert "parameters" in errors
    assert "TRADING_MODE=live" in str(errors["trading_mode"])
    agent.refresh_from_db()
    assert agent.interval_minutes == 60
    assert not AuditEvent.objects.exists()


def test_creation_goes_through_the_service_and_is_audited(admin_client):
    data = {
        "slug": "fresh",
        "name": "Fresh agent",
        "kind": "test-ok",
        "parameters": "{}",
        "interval_minutes": "45",
        "timeout_seconds": "120",
        "max_consecutive_failures": "5",
        "trading_mode": "dry_run",
        "audit_reason": "new desk",
    }
    form_page = admin_client.get(reverse("admin:runner_agent_add")).content.decode()
    assert 'name="slug"' in form_page and 'id="runner-control-room"' not in form_page
    response = admin_client.post(reverse("admin:runner_agent_add"), data)
    assert response.status_code == 302
    agent = Agent.objects.get(slug="fresh")
    assert agent.interval_minutes == 45 and agent.state == "stopped"
    event = AuditEvent.objects.get(agent=agent)
    assert (event.action, event.outcome, event.reason) == ("create", "applied", "new desk")
    assert event.changes["interval_minutes"] == {"before": None, "after": 45}


def test_deletion_goes_through_the_service_and_the_trail_stays(admin_client):
    agent = AgentFactory(slug="doomed")
    CycleRunFactory.create_batch(3, agent=agent)
    confirm = admin_client.get(reverse("admin:runner_agent_delete", args=[agent.pk]))
    assert "3 cycle run(s) of this agent" in confirm.content.decode()
    response = admin_client.post(
        reverse("admin:runner_agent_delete", args=[agent.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Agent.objects.filter(slug="doomed").exists()
    assert not CycleRun.objects.exists()
    event = AuditEvent.objects.get(agent_slug="doomed")
    assert (event.action, event.outcome) == ("delete", "applied")


def test_deletion_is_refused_while_a_cycle_runs(admin_client):
    agent = AgentFactory(slug="busy", state="running")
    CycleRunFactory(
        agent=agent,
        status="running",
        finished_at=None,
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    response = admin_client.post(
        reverse("admin:runner_agent_delete", args=[agent.pk]), {"post": "yes"}, follow=True
    )
    assert ("error", "Delete refused: A cycle is running; stop the agent first") in messages_of(
        response
    )
    assert Agent.objects.filter(slug="busy").exists()
    assert AuditEvent.objects.get(agent=agent).outcome == "refused"


def test_bulk_delete_is_not_offered(admin_client):
    AgentFactory()
    response = admin_client.get(reverse("admin:runner_agent_changelist"))
    assert "delete_selected" not in response.content.decode()


@pytest.fixture
def viewer_client(client):
    client.force_login(UserFactory(username="watcher", perms=["runner.view_agent"]))
    return client


def test_a_forged_change_without_the_permission_is_refused_and_audited(viewer_client):
    agent = AgentFactory(name="Before")
    url = reverse("admin:runner_agent_change", args=[agent.pk])
    response = viewer_client.post(url, {"name": "After", "audit_reason": "sneaky"})
    assert response.status_code == 403
    agent.refresh_from_db()
    assert agent.name == "Before"
    event = AuditEvent.objects.get(agent_id=agent.pk)
    assert (event.action, event.outcome, event.source) == ("configure", "refused", "admin")
    assert "runner.change_agent" in event.refusal_reason and event.reason == "sneaky"


def test_a_forged_add_without_the_permission_is_refused_and_audited(viewer_client):
    response = viewer_client.post(reverse("admin:runner_agent_add"), {"slug": "intruder"})
    assert response.status_code == 403
    assert not Agent.objects.filter(slug="intruder").exists()
    event = AuditEvent.objects.get(agent_slug="intruder")
    assert (event.action, event.outcome) == ("create", "refused")
    assert "runner.add_agent" in event.refusal_reason


def test_a_forged_delete_without_the_permission_is_refused_and_audited(viewer_client):
    agent = AgentFactory()
    url = reverse("admin:runner_agent_delete", args=[agent.pk])
    assert viewer_client.post(url, {"post": "yes"}).status_code == 403
    assert Agent.objects.filter(pk=agent.pk).exists()
    event = AuditEvent.objects.get(agent_id=agent.pk)
    assert (event.action, event.outcome) == ("delete", "refused")
    assert "runner.delete_agent" in event.refusal_reason


def test_viewing_the_pages_without_the_permission_to_change_writes_nothing(viewer_client):
    agent = AgentFactory()
    assert (
        viewer_client.get(reverse("admin:runner_agent_change", args=[agent.pk])).status_code == 200
    )
    assert (
        viewer_client.get(reverse("admin:runner_agent_delete", args=[agent.pk])).status_code == 403
    )
    assert not AuditEvent.objects.exists()
