"""The runner's state machine (DESIGN §3) as the seed's tests pinned it, now on the database."""

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


def test_defaults():
    agent = AgentFactory()
    assert agent.interval_minutes == 60
    assert agent.state == "stopped"
    assert (agent.run_count, agent.success_count, agent.error_count) == (0, 0, 0)
    assert agent.consecutive_failures == 0
    assert agent.last_run is None and agent.next_run is None


def test_custom_interval():
    assert AgentFactory(interval_minutes=30).interval_minutes == 30


def test_status_has_every_field():
    status = selectors.agent_status(AgentFactory())
    for name in (
        "state",
        "running",
        "interval_minutes",
        "next_run",
        "last_run",
        "last_success",
        "last_error",
        "run_count",
        "success_count",
        "error_count",
        "consecutive_failures",
    ):
        assert name in status
    assert status["state"] == "stopped" and status["running"] is False


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


def test_interval_change_is_reflected_in_status_and_next_run(api_actor, run_cycle):
    agent = AgentFactory()
    services.agent_start(agent=agent, actor=api_actor)
    run_cycle(agent)
    last_run = agent.last_run
    services.agent_set_interval(agent=agent, interval_minutes=15, actor=api_actor)
    status = selectors.agent_status(agent)
    assert status["interval_minutes"] == 15
    assert status["next_run"] == last_run + timedelta(minutes=15)
    last = events(agent)[-1]
    assert last.action == "set_interval"
    assert last.changes == {"interval_minutes": {"before": 60, "after": 15}}


def test_interval_change_never_puts_next_run_in_the_past(api_actor):
    agent = AgentFactory()
    services.agent_start(agent=agent, actor=api_actor)
    Agent.objects.filter(pk=agent.pk).update(last_run=timezone.now() - timedelta(hours=3))
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


def test_config_update_is_audited_with_before_and_after(api_actor):
    agent = AgentFactory(timeout_seconds=300, parameters={"value": 1})
    services.agent_update_config(
        agent=agent, values={"timeout_seconds": 120, "name": "Renamed"}, actor=api_actor
    )
    agent.refresh_from_db()
    assert agent.timeout_seconds == 120
    [event] = events(agent)
    assert event.action == "configure"
    assert event.changes == {
        "name": {"before": f"Agent {agent.slug}", "after": "Renamed"},
        "timeout_seconds": {"before": 300, "after": 120},
    }


def test_config_update_refuses_state_fields_and_bad_values(api_actor):
    agent = AgentFactory()
    with pytest.raises(InvalidInput) as refused:
        services.agent_update_config(agent=agent, values={"state": "running"}, actor=api_actor)
    assert refused.value.field == "state"
    with pytest.raises(InvalidInput) as refused:
        services.agent_update_config(agent=agent, values={"timeout_seconds": 0}, actor=api_actor)
    assert refused.value.field == "timeout_seconds"
    agent.refresh_from_db()
    assert agent.state == "stopped" and agent.timeout_seconds == 300
    assert [e.outcome for e in events(agent)] == ["refused", "refused"]


def test_live_mode_needs_the_environment_to_allow_it(api_actor, settings):
    agent = AgentFactory()
    with pytest.raises(InvalidInput) as refused:
        services.agent_update_config(agent=agent, values={"trading_mode": "live"}, actor=api_actor)
    assert refused.value.field == "trading_mode"
    settings.TRADING_MODE = "live"
    services.agent_update_config(agent=agent, values={"trading_mode": "live"}, actor=api_actor)
    agent.refresh_from_db()
    assert agent.trading_mode == "live" and agent.effective_trading_mode == "live"
    settings.TRADING_MODE = "dry_run"
    assert agent.effective_trading_mode == "dry_run"


def test_create_and_delete_are_audited(api_actor):
    agent = services.agent_create(
        values={"slug": "new-one", "kind": "test-ok", "interval_minutes": 10}, actor=api_actor
    )
    assert agent.name == "new-one" and agent.interval_minutes == 10
    services.agent_delete(agent=agent, actor=api_actor)
    assert not Agent.objects.filter(slug="new-one").exists()
    trail = AuditEvent.objects.filter(agent_slug="new-one").order_by("id")
    assert [(e.action, e.outcome) for e in trail] == [("create", "applied"), ("delete", "applied")]


def test_create_with_unknown_kind_is_refused():
    from runner.actors import Actor

    with pytest.raises(InvalidInput) as refused:
        services.agent_create(values={"slug": "x", "kind": "nope"}, actor=Actor.cli())
    assert refused.value.field == "kind"
    assert "Unknown agent kind 'nope'" in refused.value.message
    assert not Agent.objects.filter(slug="x").exists()
    assert AuditEvent.objects.filter(action="create", outcome="refused").count() == 1
