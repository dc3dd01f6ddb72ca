"""Configuration versions: one per applied configuration change, restorable through the
configuration service (services.agent_restore_version), refused and audited like any change."""

import pytest

from runner import execution, services, versions
from runner.actors import Actor
from runner.errors import InvalidInput, TransitionRefused
from runner.models import Agent, AgentConfigVersion, AuditEvent, CycleRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(api_actor):
    return services.agent_create(
        values={"slug": "versioned", "kind": "test-ok", "parameters": {"value": 1}},
        actor=api_actor,
        reason="new agent",
    )


def numbers(agent):
    return list(versions.versions_of(agent).values_list("number", flat=True))


def test_every_applied_configuration_change_makes_the_next_version(agent, api_actor):
    first = versions.versions_of(agent).get()
    assert (first.number, first.action, first.actor_username, first.reason) == (
        1,
        "create",
        "operator",
        "new agent",
    )
    assert first.config["parameters"] == {"value": 1} and first.config["budgets"] == {}
    assert first.audit_event == AuditEvent.objects.get(action="create")

    services.agent_update_config(
        agent=agent, values={"parameters": {"value": 2}}, actor=api_actor, reason="tune"
    )
    services.agent_set_interval(agent=agent, interval_minutes=15, actor=Actor.cli())
    services.agent_update_config(
        agent=agent, values={"budgets": {"cycles_per_day": 10}}, actor=api_actor
    )
    assert numbers(agent) == [4, 3, 2, 1]
    latest = versions.versions_of(agent).first()
    assert latest.config["budgets"] == {"cycles_per_day": 10}
    assert latest.config["interval_minutes"] == 15 and latest.config["parameters"] == {"value": 2}
    interval = versions.versions_of(agent).get(number=3)
    assert (interval.action, interval.source) == ("set_interval", "cli")
    assert interval.audit_event.changes == {"interval_minutes": {"before": 60, "after": 15}}


def test_what_changes_no_configuration_makes_no_version(agent, api_actor):
    services.agent_update_config(agent=agent, values={"parameters": {"value": 1}}, actor=api_actor)
    services.agent_start(agent=agent, actor=api_actor)
    services.agent_pause(agent=agent, actor=api_actor, until="2h")
    with pytest.raises(InvalidInput):
        services.agent_update_config(agent=agent, values={"interval_minutes": 0}, actor=api_actor)
    assert numbers(agent) == [1]


def test_the_diff_names_each_changed_field_and_key(agent, api_actor):
    services.agent_update_config(
        agent=agent,
        values={"parameters": {"value": 5}, "name": "Renamed", "budgets": {"cycles_per_day": 3}},
        actor=api_actor,
    )
    diff = versions.version_diff(agent, 1, 2)
    assert (diff["from_version"], diff["to_version"]) == (1, 2)
    assert diff["changes"] == [
        {"field": "budgets.cycles_per_day", "change": "added", "before": None, "after": 3},
        {"field": "name", "change": "changed", "before": "versioned", "after": "Renamed"},
        {"field": "parameters.value", "change": "changed", "before": 1, "after": 5},
    ]
    backwards = versions.version_diff(agent, 2, 1)["changes"]
    assert backwards[0] == {
        "field": "budgets.cycles_per_day",
        "change": "removed",
        "before": 3,
        "after": None,
    }
    assert versions.version_diff(agent, 2, 2)["changes"] == []


def test_a_restore_is_one_audited_configuration_change_and_the_next_version(agent, api_actor):
    services.agent_update_config(
        agent=agent, values={"parameters": {"value": 9}, "timeout_seconds": 30}, actor=api_actor
    )
    restored = services.agent_restore_version(
        agent=agent, number=1, actor=api_actor, reason="9 was worse"
    )
    assert restored.parameters == {"value": 1} and restored.timeout_seconds == 300
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.outcome, event.reason) == (
        "restore_version",
        "applied",
        "9 was worse",
    )
    assert event.changes == {
        "parameters": {"before": {"value": 9}, "after": {"value": 1}},
        "timeout_seconds": {"before": 30, "after": 300},
    }
    third = versions.versions_of(agent).first()
    assert (third.number, third.restored_from, third.action, third.audit_event) == (
        3,
        1,
        "restore_version",
        event,
    )
    assert third.config == versions.versions_of(agent).get(number=1).config


def test_a_restore_that_would_turn_live_on_under_dry_run_is_refused_and_audited(
    agent, api_actor, settings
):
    settings.TRADING_MODE = "live"
    services.agent_update_config(agent=agent, values={"trading_mode": "live"}, actor=api_actor)
    services.agent_update_config(agent=agent, values={"trading_mode": "dry_run"}, actor=api_actor)
    settings.TRADING_MODE = "dry_run"
    events_before = AuditEvent.objects.count()

    with pytest.raises(InvalidInput) as refused:
        services.agent_restore_version(agent=agent, number=2, actor=api_actor, reason="go live")
    assert refused.value.field == "trading_mode"
    assert "only while the environment says TRADING_MODE=live" in refused.value.message
    agent.refresh_from_db()
    assert agent.trading_mode == "dry_run" and numbers(agent) == [3, 2, 1]
    assert AuditEvent.objects.count() == events_before + 1
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.outcome, event.reason) == ("restore_version", "refused", "go live")
    assert "TRADING_MODE=live" in event.refusal_reason


def test_restoring_a_missing_version_or_the_current_one_is_refused_and_audited(agent, api_actor):
    with pytest.raises(InvalidInput) as missing:
        services.agent_restore_version(agent=agent, number=7, actor=api_actor)
    assert missing.value.field == "version"
    assert missing.value.message == (
        "Agent versioned has no configuration version 7 (its versions: 1..1)."
    )
    with pytest.raises(TransitionRefused) as same:
        services.agent_restore_version(agent=agent, number=1, actor=api_actor)
    assert same.value.message == "The configuration already equals version 1; nothing to restore"
    refused = AuditEvent.objects.filter(action="restore_version", outcome="refused")
    assert refused.count() == 2 and numbers(agent) == [1]


def test_each_run_records_the_version_it_ran_with(agent, api_actor):
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), trigger="cli", enqueue=False)
    first_run = execution.run_queued(queued.pk)
    services.agent_update_config(agent=agent, values={"parameters": {"value": 4}}, actor=api_actor)
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), trigger="cli", enqueue=False)
    second_run = execution.run_queued(queued.pk)
    assert first_run.config_version.number == 1
    assert second_run.config_version.number == 2
    assert (
        second_run.config_version.config["parameters"] == second_run.config_snapshot["parameters"]
    )
    assert second_run.summary["value"] == 4
    assert list(CycleRun.objects.filter(config_version__number=2)) == [second_run]


def test_deleting_an_agent_deletes_its_versions_but_not_its_trail(agent, api_actor):
    agent_id = agent.pk
    services.agent_delete(agent=agent, actor=api_actor)
    assert not AgentConfigVersion.objects.filter(agent_id=agent_id).exists()
    assert AuditEvent.objects.filter(agent_slug="versioned", action="create").exists()


def test_the_migration_gave_existing_agents_their_first_version():
    default = Agent.objects.get(slug="default")
    version = versions.versions_of(default).get()
    assert (version.number, version.source, version.action) == (1, "system", "configure")
    assert version.config == versions.config_of(default)
