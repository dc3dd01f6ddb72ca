"""The agent page as a control room: state, timings, counters, recent runs and events."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import AgentFactory, AuditEventFactory, CycleRunFactory, UserFactory

pytestmark = pytest.mark.django_db


VIEW = "runner.view_agent"


CONTROL = "runner.control_agent"


def change_url(agent):
    return reverse("admin:runner_agent_change", args=[agent.pk])


@pytest.fixture
def controller(client):
    user = UserFactory(username="operator", perms=[VIEW, CONTROL])
    client.force_login(user)
    return user


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
    assert "1–10080 minutes" in html  # beside the set-interval form
    assert "Minutes between scheduled cycles (1..10080)." in html


def test_report_link_appears_only_when_the_report_url_exists(client, controller, settings):
    agent = AgentFactory()
    html = client.get(change_url(agent)).content.decode()
    assert f'href="/admin/runner/agent/{agent.pk}/report/">Report<' in html
    assert client.get(f"/admin/runner/agent/{agent.pk}/report/").status_code == 200
    settings.ROOT_URLCONF = "tests.runner.report_urls"  # a URLconf without the report page
    assert ">Report<" not in client.get(change_url(agent)).content.decode()


def runner_panel(client, agent):
    html = client.get(change_url(agent)).content.decode()
    return html.split('id="runner-control-room"', 1)[1].split("</section>", 1)[0]


def test_panel_shows_the_interval_once_as_a_form_to_whoever_may_control(client, controller):
    panel = runner_panel(client, AgentFactory(interval_minutes=45))
    assert panel.count('name="interval_minutes"') == 1
    assert 'value="45"' in panel
    assert "every 45 min" not in panel


def test_panel_shows_the_interval_once_as_a_fact_to_whoever_may_only_view(client):
    client.force_login(UserFactory(username="viewer", perms=[VIEW]))
    panel = runner_panel(client, AgentFactory(interval_minutes=45))
    assert panel.count("every 45 min") == 1
    assert 'name="interval_minutes"' not in panel
