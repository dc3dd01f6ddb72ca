"""The agent page's control buttons and the list's bulk actions: permissions, services, audit."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from runner.models import AuditEvent, CycleRun
from tests.factories import AgentFactory, CycleRunFactory, UserFactory

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


@pytest.mark.parametrize("sent", [None, "admin-click-42"])
def test_the_audit_row_carries_the_request_id_of_the_response_header(client, controller, sent):
    """One id per request: the audit row, the log lines and the X-Request-ID header agree."""
    agent = AgentFactory(state="stopped")
    headers = {"HTTP_X_REQUEST_ID": sent} if sent else {}
    response = client.post(control_url(agent), {"action": "start"}, **headers)
    assert response.status_code == 302
    event = AuditEvent.objects.get(agent=agent)
    assert event.request_id == response["X-Request-ID"]
    assert sent is None or event.request_id == sent


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


CHANGELIST = "admin:runner_agent_changelist"


def test_bulk_start_reports_applied_and_refused_per_agent(client):
    user = UserFactory(perms=["runner.view_agent", "runner.control_agent"])
    client.force_login(user)
    stopped = AgentFactory(slug="a-stopped", state="stopped")
    running = AgentFactory(slug="b-running", state="running", next_run=timezone.now())
    errored = AgentFactory(slug="c-error", state="error")
    response = client.post(
        reverse(CHANGELIST),
        {"action": "start_agents", "_selected_action": [stopped.pk, running.pk, errored.pk]},
        follow=True,
    )
    assert messages_of(response) == [
        ("success", "Start: applied to 2 agent(s): a-stopped, c-error."),
        ("warning", "Start: refused for 1 agent(s): b-running (Agent is already running)."),
    ]
    for agent in (stopped, running, errored):
        agent.refresh_from_db()
        assert agent.state == "running"
    outcomes = dict(AuditEvent.objects.values_list("agent_slug", "outcome"))
    assert outcomes == {"a-stopped": "applied", "b-running": "refused", "c-error": "applied"}
    assert set(AuditEvent.objects.values_list("source", flat=True)) == {"admin"}


@pytest.mark.parametrize(
    ("action", "state", "after"),
    [
        ("stop_agents", "running", "stopped"),
        ("pause_agents", "running", "paused"),
        ("resume_agents", "paused", "running"),
    ],
)
def test_each_bulk_action_calls_the_service_per_agent(admin_client, action, state, after):
    agents = [AgentFactory(state=state, next_run=timezone.now()) for _ in range(3)]
    admin_client.post(
        reverse(CHANGELIST), {"action": action, "_selected_action": [a.pk for a in agents]}
    )
    for agent in agents:
        agent.refresh_from_db()
        assert agent.state == after
    assert AuditEvent.objects.filter(outcome="applied").count() == 3


def test_bulk_actions_need_the_control_permission_and_a_forged_one_is_audited(client):
    user = UserFactory(perms=["runner.view_agent", "runner.change_agent"])
    client.force_login(user)
    agent = AgentFactory(state="stopped")
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "start_agents" not in page
    response = client.post(
        reverse(CHANGELIST), {"action": "start_agents", "_selected_action": [agent.pk, "x"]}
    )
    assert response.status_code == 403
    agent.refresh_from_db()
    assert agent.state == "stopped"
    event = AuditEvent.objects.get()
    assert (event.agent, event.action, event.outcome) == (agent, "start", "refused")
    assert "runner.control_agent" in event.refusal_reason and event.actor == user


def test_pause_with_an_end_from_the_agent_page(client, controller):
    agent = AgentFactory(state="running", next_run=timezone.now())
    page = client.get(change_url(agent)).content.decode()
    assert 'name="until"' in page
    response = client.post(control_url(agent), {"action": "pause", "until": "3h"}, follow=True)
    agent.refresh_from_db()
    assert agent.state == "paused" and agent.paused_until is not None
    [(level, text)] = messages_of(response)
    assert level == "success" and "paused until" in text and "resumes by itself" in text
    assert 'id="runner-paused-until"' in response.content.decode()
    refused = client.post(
        control_url(AgentFactory(state="running")), {"action": "pause", "until": "x"}, follow=True
    )
    [(level, text)] = messages_of(refused)
    assert level == "error" and "until must" in text


@pytest.mark.parametrize("typed", ["²", "--5", "٣", "1e3", " ", "9" * 40])
def test_odd_text_in_the_interval_box_is_refused_naming_the_field(client, controller, typed):
    """Digits that `isdigit()` accepts but `int()` does not (and the like) once gave a 500."""
    agent = AgentFactory(interval_minutes=60)
    response = client.post(
        control_url(agent), {"action": "set_interval", "interval_minutes": typed}, follow=True
    )
    assert response.status_code == 200
    [(level, text)] = messages_of(response)
    assert level == "error" and "interval_minutes must be a whole number from 1 to 10080" in text
    agent.refresh_from_db()
    assert agent.interval_minutes == 60
    assert AuditEvent.objects.get(agent=agent).outcome == "refused"
