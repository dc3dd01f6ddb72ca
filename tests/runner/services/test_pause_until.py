"""A pause with an end: the runner resumes by itself at `until`, as a `system` audit event that
names the pause it ends (services.agent_pause(until=...), services.resume_expired_pauses)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from runner import monitoring, services
from runner.errors import InvalidInput
from runner.models import Agent, AuditEvent
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def running_agent(api_actor, **fields):
    agent = AgentFactory(**fields)
    services.agent_start(agent=agent, actor=api_actor)
    return agent


def test_pause_until_a_time_records_it_and_resumes_by_itself_then(api_actor):
    agent = running_agent(api_actor)
    now = timezone.now()
    until = now + timedelta(hours=2)
    services.agent_pause(agent=agent, actor=api_actor, reason="maintenance", until=until, now=now)
    agent.refresh_from_db()
    assert (agent.state, agent.paused_until) == ("paused", until)
    pause = AuditEvent.objects.filter(agent=agent, action="pause").get()
    assert pause.changes == {"paused_until": {"before": None, "after": until.isoformat()}}

    assert services.resume_expired_pauses(now=until - timedelta(seconds=1)) == 0
    assert services.resume_expired_pauses(now=until) == 1
    agent.refresh_from_db()
    assert agent.state == "running" and agent.paused_until is None
    resume = AuditEvent.objects.filter(agent=agent, action="resume").get()
    assert (resume.source, resume.outcome, resume.state_before) == ("system", "applied", "paused")
    assert f"audit event {pause.pk}" in resume.reason and "maintenance" in resume.reason
    assert "operator" in resume.reason
    assert services.resume_expired_pauses(now=until + timedelta(minutes=5)) == 0  # once


@pytest.mark.parametrize(
    "written, expected", [("90m", timedelta(minutes=90)), ("2d", timedelta(days=2))]
)
def test_until_may_be_a_duration_from_now(api_actor, written, expected):
    agent = running_agent(api_actor)
    now = timezone.now()
    services.agent_pause(agent=agent, actor=api_actor, until=written, now=now)
    assert agent.paused_until == now + expected


def test_until_as_iso_text_is_utc_when_it_names_no_offset(api_actor):
    agent = running_agent(api_actor)
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    services.agent_pause(agent=agent, actor=api_actor, until="2026-12-03T08:00", now=now)
    assert agent.paused_until == datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "bad",
    ["yesterday", "1999-01-01T00:00Z", "0m", "400d", "2030-01-01T00:00Z", 5, ["2h"], "2h\x00"],
)
def test_a_bad_until_is_refused_naming_the_field_and_changes_nothing(api_actor, bad):
    agent = running_agent(api_actor)
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    with pytest.raises(InvalidInput) as refused:
        services.agent_pause(agent=agent, actor=api_actor, until=bad, now=now)
    assert refused.value.field == "until" and "until must" in refused.value.message
    agent.refresh_from_db()
    assert agent.state == "running" and agent.paused_until is None
    event = AuditEvent.objects.filter(agent=agent).order_by("-id").first()
    assert (event.action, event.outcome) == ("pause", "refused")


def test_a_manual_resume_or_stop_ends_the_pause_and_nothing_resumes_later(api_actor):
    first, second = running_agent(api_actor), running_agent(api_actor)
    until = timezone.now() + timedelta(minutes=30)
    for agent in (first, second):
        services.agent_pause(agent=agent, actor=api_actor, until=until)
    services.agent_resume(agent=first, actor=api_actor)
    services.agent_stop(agent=second, actor=api_actor)
    assert services.resume_expired_pauses(now=until + timedelta(seconds=1)) == 0
    assert Agent.objects.get(pk=first.pk).paused_until is None
    assert Agent.objects.get(pk=second.pk).state == "stopped"
    assert not AuditEvent.objects.filter(source="system").exists()


def test_the_watchdog_ends_due_pauses_when_no_dispatcher_runs(api_actor):
    agent = running_agent(api_actor)
    services.agent_pause(agent=agent, actor=api_actor, until="1m")
    Agent.objects.filter(pk=agent.pk).update(paused_until=timezone.now() - timedelta(seconds=1))
    assert monitoring.watchdog()["resumed"] == 1
    assert Agent.objects.get(pk=agent.pk).state == "running"


def test_the_database_refuses_an_end_on_an_agent_that_is_not_paused():
    agent = AgentFactory(state="running")
    with pytest.raises(IntegrityError), transaction.atomic():
        Agent.objects.filter(pk=agent.pk).update(paused_until=timezone.now())
