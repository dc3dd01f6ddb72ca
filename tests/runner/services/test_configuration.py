"""Configuration changes: create, edit and delete agents, validated and audited."""

import pytest

from runner import services
from runner.errors import InvalidInput
from runner.models import Agent, AuditEvent
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def events(agent):
    return list(AuditEvent.objects.filter(agent=agent).order_by("id"))


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


def test_an_edit_that_changes_nothing_writes_no_event(api_actor):
    agent = AgentFactory(timeout_seconds=300, name="Same", parameters={"value": 1})
    updated_at = agent.updated_at
    result = services.agent_update_config(
        agent=agent, values={"timeout_seconds": 300, "name": "Same"}, actor=api_actor
    )
    assert result.timeout_seconds == 300
    assert events(agent) == []
    agent.refresh_from_db()
    assert agent.updated_at == updated_at  # not even saved


def test_an_edit_that_changes_nothing_keeps_the_reason_it_was_given(api_actor):
    agent = AgentFactory(timeout_seconds=300, parameters={"value": 1})
    services.agent_update_config(
        agent=agent, values={"timeout_seconds": 300}, actor=api_actor, reason="reviewed, fine"
    )
    [event] = events(agent)
    assert (event.action, event.outcome, event.changes, event.reason) == (
        "configure", "applied", {}, "reviewed, fine",
    )  # fmt: skip


def test_a_reason_with_a_lone_surrogate_is_refused(api_actor):
    """The CLI reads arguments with surrogateescape, so undecodable bytes arrive as lone
    surrogates; no database text column can store them."""
    agent = AgentFactory()
    with pytest.raises(InvalidInput) as refused:
        services.agent_start(agent=agent, actor=api_actor, reason="bad \udcff byte")
    assert refused.value.field == "reason"
    agent.refresh_from_db()
    assert agent.state == "stopped"
    [event] = events(agent)
    assert (event.outcome, event.reason) == ("refused", "")


def test_the_audit_writer_never_stores_a_lone_surrogate(api_actor):
    agent = AgentFactory()
    event = services.control_refused(
        agent=None,
        agent_slug="sl\ud800ug",
        action="start",
        actor=api_actor,
        message="refused: \udfff",
        reason="why \ud83d",
    )
    event.refresh_from_db()
    assert (event.agent_slug, event.refusal_reason, event.reason) == (
        "sl\ufffdug", "refused: \ufffd", "why \ufffd",
    )  # fmt: skip
    assert agent.state == "stopped"
