"""Control transitions (DESIGN §3) as the seed's tests pinned them, now on the database."""

from datetime import timedelta

import pytest
from django.utils import timezone

from runner import selectors, services
from runner.errors import InvalidInput, TransitionRefused
from runner.models import Agent, AuditEvent
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def events(agent):
    return list(AuditEvent.objects.filter(agent=agent).order_by("id"))


def test_start_sets_next_run_now_and_audits(api_actor):
    agent = AgentFactory()
    before = timezone.now()
    services.agent_start(agent=agent, actor=api_actor, reason="go")
    agent.refresh_from_db()
    assert agent.state == "running"
    assert before <= agent.next_run <= timezone.now()
    [event] = events(agent)
    assert (event.action, event.outcome, event.source) == ("start", "applied", "api")
    assert (event.state_before, event.state_after) == ("stopped", "running")
    assert event.actor_username == "operator" and event.reason == "go"
    assert event.client_ip == "127.0.0.1" and event.request_id == "req-1"


def test_start_while_running_is_refused_and_audited(api_actor):
    agent = AgentFactory()
    services.agent_start(agent=agent, actor=api_actor)
    with pytest.raises(TransitionRefused) as refused:
        services.agent_start(agent=agent, actor=api_actor)
    assert refused.value.message == "Agent is already running"
    assert refused.value.state == "running"
    last = events(agent)[-1]
    assert (last.action, last.outcome) == ("start", "refused")
    assert last.refusal_reason == "Agent is already running"
    assert Agent.objects.get(pk=agent.pk).state == "running"


def test_stop_and_stop_while_stopped(api_actor):
    agent = AgentFactory()
    services.agent_start(agent=agent, actor=api_actor)
    services.agent_stop(agent=agent, actor=api_actor)
    agent.refresh_from_db()
    assert agent.state == "stopped" and agent.next_run is None
    with pytest.raises(TransitionRefused, match="not running"):
        services.agent_stop(agent=agent, actor=api_actor)
    assert [e.outcome for e in events(agent)] == ["applied", "applied", "refused"]


def test_pause_resume_and_pause_while_not_running(api_actor):
    agent = AgentFactory()
    with pytest.raises(TransitionRefused, match="not running"):
        services.agent_pause(agent=agent, actor=api_actor)
    services.agent_start(agent=agent, actor=api_actor)
    services.agent_pause(agent=agent, actor=api_actor)
    agent.refresh_from_db()
    assert agent.state == "paused" and agent.next_run is None
    services.agent_resume(agent=agent, actor=api_actor)
    agent.refresh_from_db()
    assert agent.state == "running" and agent.next_run is not None
    with pytest.raises(TransitionRefused, match="not paused"):
        services.agent_resume(agent=agent, actor=api_actor)


def test_resume_keeps_a_future_slot_and_replaces_a_past_one(api_actor):
    agent = AgentFactory()
    services.agent_start(agent=agent, actor=api_actor)
    future = timezone.now() + timedelta(minutes=20)
    Agent.objects.filter(pk=agent.pk).update(next_run=future)
    services.agent_pause(agent=agent, actor=api_actor)
    services.agent_resume(agent=agent, actor=api_actor)
    agent.refresh_from_db()
    assert agent.next_run == future

    past = timezone.now() - timedelta(hours=5)
    services.agent_pause(agent=agent, actor=api_actor)
    Agent.objects.filter(pk=agent.pk).update(paused_next_run=past)
    now = timezone.now()
    services.agent_resume(agent=agent, actor=api_actor, now=now)
    agent.refresh_from_db()
    assert agent.next_run == now  # one cycle now, not a burst of the missed ones


def test_interval_change_is_reflected_in_status_and_next_run(api_actor, run_scheduled):
    agent = AgentFactory()
    services.agent_start(agent=agent, actor=api_actor)
    run_scheduled(agent)  # start's first cycle
    last_run = agent.last_run
    services.agent_set_interval(agent=agent, interval_minutes=15, actor=api_actor)
    status = selectors.agent_status(agent)
    assert status["interval_minutes"] == 15
    assert status["next_run"] == last_run + timedelta(minutes=15)
    last = events(agent)[-1]
    assert last.action == "set_interval"
    assert last.changes == {"interval_minutes": {"before": 60, "after": 15}}


def test_interval_change_keeps_a_slot_that_is_already_due(api_actor):
    """Start's first cycle is queued: re-timing must not cancel it (the seed's start, interval)."""
    agent = AgentFactory()
    services.agent_start(agent=agent, actor=api_actor)
    due = agent.next_run
    services.agent_set_interval(agent=agent, interval_minutes=30, actor=api_actor)
    assert agent.next_run == due


def test_interval_change_never_puts_next_run_in_the_past(api_actor):
    agent = AgentFactory()
    services.agent_start(agent=agent, actor=api_actor)
    # its last cycle started 3 hours ago and the next is an hour away
    Agent.objects.filter(pk=agent.pk).update(
        last_run=timezone.now() - timedelta(hours=3), next_run=timezone.now() + timedelta(hours=1)
    )
    now = timezone.now()
    services.agent_set_interval(agent=agent, interval_minutes=5, actor=api_actor, now=now)
    agent.refresh_from_db()
    assert agent.next_run == now


@pytest.mark.parametrize("bad", [0, -5, 10081, 2.5, "abc", None, True, "", [], {}])
def test_bad_intervals_are_refused_naming_the_field_and_range(api_actor, bad):
    agent = AgentFactory(interval_minutes=45)
    with pytest.raises(InvalidInput) as refused:
        services.agent_set_interval(agent=agent, interval_minutes=bad, actor=api_actor)
    assert refused.value.field == "interval_minutes"
    assert "interval_minutes" in refused.value.message and "1 to 10080" in refused.value.message
    agent.refresh_from_db()
    assert agent.interval_minutes == 45
    [event] = events(agent)
    assert (event.action, event.outcome) == ("set_interval", "refused")


@pytest.mark.parametrize("good", [1, 10080, "30", 30.0])
def test_interval_bounds_accepted(api_actor, good):
    agent = AgentFactory()
    services.agent_set_interval(agent=agent, interval_minutes=good, actor=api_actor)
    agent.refresh_from_db()
    assert agent.interval_minutes == int(float(good))


def test_overlong_reason_is_refused_and_changes_nothing(api_actor):
    agent = AgentFactory()
    with pytest.raises(InvalidInput) as refused:
        services.agent_start(agent=agent, actor=api_actor, reason="x" * 1001)
    assert refused.value.field == "reason"
    agent.refresh_from_db()
    assert agent.state == "stopped"
    assert [(e.action, e.outcome) for e in events(agent)] == [("start", "refused")]


def test_run_once_works_from_stopped_and_keeps_state(run_cycle):
    agent = AgentFactory()
    run_cycle(agent)
    assert agent.state == "stopped"
    assert agent.next_run is None


def test_run_once_is_refused_while_a_cycle_is_in_flight(api_actor):
    agent = AgentFactory()
    queued = services.agent_run_once(agent=agent, actor=api_actor, enqueue=False)
    assert queued.status == "queued" and queued.control_event.action == "run_once"
    with pytest.raises(TransitionRefused, match="already in flight"):
        services.agent_run_once(agent=agent, actor=api_actor, enqueue=False)
    services.cycle_claim_queued(run_id=queued.pk, worker="w:1")
    with pytest.raises(TransitionRefused, match="already in flight"):
        services.agent_run_once(agent=agent, actor=api_actor, enqueue=False)
    outcomes = list(
        AuditEvent.objects.filter(agent=agent, action="run_once").values_list("outcome", flat=True)
    )
    assert sorted(outcomes) == ["applied", "refused", "refused"]
