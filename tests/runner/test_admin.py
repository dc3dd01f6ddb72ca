"""The admin control room: buttons, permissions, audit of every request, configuration through services."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from runner.models import Agent, AuditEvent, CycleRun
from tests.factories import AgentFactory, AuditEventFactory, CycleRunFactory, UserFactory

pytestmark = pytest.mark.django_db

VIEW = "runner.view_agent"
CONTROL = "runner.control_agent"


def change_url(agent):
    return reverse("admin:runner_agent_change", args=[agent.pk])


def control_url(agent):
    return reverse("admin:runner_agent_control", args=[agent.pk])


def messages_of(response):
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def controller(client):
    user = UserFactory(username="operator", perms=[VIEW, CONTROL])
    client.force_login(user)
    return user


@pytest.fixture
def viewer(client):
    user = UserFactory(username="watcher", perms=[VIEW])
    client.force_login(user)
    return user


# --- the change page --------------------------------------------------------------------------------


def test_viewer_without_control_permission_sees_state_but_no_buttons(client, viewer):
    agent = AgentFactory(state="running", next_run=timezone.now() + timedelta(minutes=12))
    response = client.get(change_url(agent))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="runner-state"' in html and "Running" in html
    assert 'id="runner-controls"' not in html
    assert 'name="action"' not in html
    assert 'id="runner-no-control"' in html


def test_controller_sees_only_the_buttons_the_state_allows(client, controller):
    agent = AgentFactory(state="stopped")
    html = client.get(change_url(agent)).content.decode()
    assert 'value="start"' in html and 'value="run_once"' in html
    assert 'value="stop"' not in html
    assert 'value="pause"' not in html
    assert 'value="resume"' not in html

    agent = AgentFactory(state="running", next_run=timezone.now() + timedelta(minutes=5))
    html = client.get(change_url(agent)).content.decode()
    assert 'value="stop"' in html and 'value="pause"' in html
    assert 'value="start"' not in html and 'value="resume"' not in html

    agent = AgentFactory(state="paused")
    html = client.get(change_url(agent)).content.decode()
    assert 'value="resume"' in html and 'value="stop"' in html
    assert 'value="pause"' not in html and 'value="start"' not in html


def test_run_once_button_is_hidden_while_a_cycle_is_in_flight(client, controller):
    agent = AgentFactory(state="stopped")
    CycleRunFactory(
        agent=agent, trigger="manual", status="queued", started_at=None, finished_at=None
    )
    html = client.get(change_url(agent)).content.decode()
    assert 'value="run_once"' not in html
    assert 'value="start"' in html


def test_page_shows_next_run_humanised_counters_last_error_runs_and_events(client, controller):
    now = timezone.now()
    agent = AgentFactory(
        state="running",
        next_run=now + timedelta(minutes=12, seconds=30),
        last_run=now - timedelta(minutes=48),
        run_count=7,
        success_count=5,
        error_count=2,
        consecutive_failures=1,
        last_error="BoomError: the agent exploded on purpose",
    )
    run = CycleRunFactory(
        agent=agent,
        status="failed",
        started_at=now - timedelta(minutes=48),
        error_type="BoomError",
        error_message="the agent exploded on purpose",
    )
    AuditEventFactory(agent=agent, action="start", actor_username="alice", reason="morning start")
    html = client.get(change_url(agent)).content.decode()
    assert "(in 12\xa0minutes)" in html
    assert "(48\xa0minutes ago)" in html
    assert ">7<" in html and ">5<" in html and ">2<" in html
    assert "1 of 3 allowed" in html
    assert "BoomError: the agent exploded on purpose" in html
    assert reverse("admin:runner_cyclerun_change", args=[run.pk]) in html
    assert "runner-run-failed" in html
    assert "morning start" in html and "alice" in html


def test_interval_bounds_are_shown_on_the_page_and_the_form(client, controller):
    agent = AgentFactory()
    html = client.get(change_url(agent)).content.decode()
    assert 'min="1" max="10080"' in html
    assert "Interval in minutes (1–10080)" in html
    assert "Minutes between scheduled cycles (1..10080)." in html


def test_report_link_appears_only_when_the_report_url_exists(client, controller, settings):
    agent = AgentFactory()
    html = client.get(change_url(agent)).content.decode()
    assert f'href="/admin/runner/agent/{agent.pk}/report/">Report<' in html
    assert client.get(f"/admin/runner/agent/{agent.pk}/report/").status_code == 200
    settings.ROOT_URLCONF = "tests.runner.report_urls"  # a URLconf without the report page
    assert ">Report<" not in client.get(change_url(agent)).content.decode()


# --- control requests -------------------------------------------------------------------------------


def test_forged_post_without_control_permission_is_refused_and_audited(client, viewer):
    agent = AgentFactory(state="stopped")
    response = client.post(
        control_url(agent),
        {"action": "start", "reason": "sneaky"},
        REMOTE_ADDR="10.1.2.3",
        HTTP_X_REQUEST_ID="req-forged-1",
    )
    assert response.status_code == 403
    agent.refresh_from_db()
    assert agent.state == "stopped" and agent.next_run is None
    event = AuditEvent.objects.get(agent=agent)
    assert event.action == "start"
    assert event.outcome == "refused"
    assert "runner.control_agent" in event.refusal_reason
    assert event.actor == viewer and event.actor_username == "watcher"
    assert event.source == "admin"
    assert event.client_ip == "10.1.2.3" and event.request_id == "req-forged-1"
    assert event.reason == "sneaky"


def test_start_applies_through_the_service_and_says_so(client, controller):
    agent = AgentFactory(state="stopped")
    response = client.post(control_url(agent), {"action": "start", "reason": "go"}, follow=True)
    assert response.redirect_chain[-1][0] == change_url(agent)
    agent.refresh_from_db()
    assert agent.state == "running" and agent.next_run is not None
    assert ("success", f"Agent {agent.slug} started (now running).") in messages_of(response)
    event = AuditEvent.objects.get(agent=agent)
    assert (event.action, event.outcome, event.source) == ("start", "applied", "admin")
    assert (event.state_before, event.state_after, event.reason) == ("stopped", "running", "go")
    assert event.actor == controller and event.client_ip == "127.0.0.1" and event.request_id


def test_refused_transition_shows_an_error_and_is_audited(client, controller):
    agent = AgentFactory(state="stopped")
    response = client.post(control_url(agent), {"action": "pause"}, follow=True)
    assert ("error", "Pause refused: Agent is not running") in messages_of(response)
    agent.refresh_from_db()
    assert agent.state == "stopped"
    event = AuditEvent.objects.get(agent=agent)
    assert (event.action, event.outcome) == ("pause", "refused")


@pytest.mark.parametrize(
    ("state", "action", "after"),
    [
        ("running", "stop", "stopped"),
        ("running", "pause", "paused"),
        ("paused", "resume", "running"),
    ],
)
def test_each_state_button_calls_its_service(client, controller, state, action, after):
    agent = AgentFactory(state=state, next_run=timezone.now() + timedelta(minutes=5))
    client.post(control_url(agent), {"action": action})
    agent.refresh_from_db()
    assert agent.state == after
    assert AuditEvent.objects.filter(agent=agent, action=action, outcome="applied").count() == 1


def test_run_once_queues_a_manual_run_and_a_second_is_refused(client, controller):
    agent = AgentFactory(state="stopped")
    response = client.post(control_url(agent), {"action": "run_once"}, follow=True)
    run = CycleRun.objects.get(agent=agent)
    assert (run.status, run.trigger, run.requested_by) == ("queued", "manual", controller)
    assert run.control_event.action == "run_once"
    assert any(f"#{run.pk}</a> queued" in text for _, text in messages_of(response))

    response = client.post(control_url(agent), {"action": "run_once"}, follow=True)
    assert ("error", f"Run once refused: A cycle is already in flight (run {run.pk}, queued)") in (
        messages_of(response)
    )
    assert CycleRun.objects.filter(agent=agent).count() == 1


def test_set_interval_out_of_range_names_the_field_and_range(client, controller):
    agent = AgentFactory(interval_minutes=60)
    response = client.post(
        control_url(agent), {"action": "set_interval", "interval_minutes": "0"}, follow=True
    )
    assert (
        "error",
        "Set interval refused: interval_minutes must be a whole number from 1 to 10080.",
    ) in messages_of(response)
    agent.refresh_from_db()
    assert agent.interval_minutes == 60
    assert AuditEvent.objects.get(agent=agent).outcome == "refused"

    client.post(control_url(agent), {"action": "set_interval", "interval_minutes": "15"})
    agent.refresh_from_db()
    assert agent.interval_minutes == 15
    event = AuditEvent.objects.filter(agent=agent, outcome="applied").get()
    assert event.changes == {"interval_minutes": {"before": 60, "after": 15}}


def test_control_url_refuses_get_and_unknown_actions_without_changes(client, controller):
    agent = AgentFactory(state="stopped")
    assert client.get(control_url(agent)).status_code == 405
    response = client.post(control_url(agent), {"action": "explode"}, follow=True)
    assert any("Unknown control action" in text for level, text in messages_of(response))
    assert client.post(reverse("admin:runner_agent_control", args=[999999])).status_code == 404
    agent.refresh_from_db()
    assert agent.state == "stopped"
    assert not AuditEvent.objects.exists()


# --- configuration through the services ----------------------------------------------------------


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
