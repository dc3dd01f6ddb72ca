"""The runner's models and the database constraints behind them (DESIGN §3-§4)."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from runner import services
from runner.actors import Actor
from runner.models import AuditEvent, CycleRun
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def test_defaults():
    agent = AgentFactory()
    assert agent.interval_minutes == 60
    assert agent.state == "stopped"
    assert (agent.run_count, agent.success_count, agent.error_count) == (0, 0, 0)
    assert agent.consecutive_failures == 0
    assert agent.last_run is None and agent.next_run is None


def test_custom_interval():
    assert AgentFactory(interval_minutes=30).interval_minutes == 30


# The database itself enforces these on PostgreSQL (a partial unique index, a trigger).


@pytest.mark.postgres
def test_database_refuses_a_second_running_run_for_one_agent():
    agent = AgentFactory()
    now = timezone.now()
    CycleRun.objects.create(agent=agent, trigger="manual", status="running", queued_at=now)
    with pytest.raises(DatabaseError), transaction.atomic():
        CycleRun.objects.create(agent=agent, trigger="manual", status="running", queued_at=now)


@pytest.mark.postgres
def test_database_refuses_a_second_run_for_one_slot():
    agent = AgentFactory()
    now = timezone.now()
    CycleRun.objects.create(
        agent=agent, trigger="schedule", slot=now, status="succeeded", queued_at=now
    )
    with pytest.raises(DatabaseError), transaction.atomic():
        CycleRun.objects.create(
            agent=agent, trigger="schedule", slot=now, status="skipped", queued_at=now
        )


@pytest.mark.postgres
def test_audit_events_cannot_be_updated_or_deleted():
    agent = AgentFactory()
    services.agent_start(agent=agent, actor=Actor.cli())
    event = AuditEvent.objects.get(agent=agent)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.delete()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM runner_auditevent")
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


@pytest.mark.postgres
def test_deleting_an_agent_keeps_its_audit_trail():
    agent = AgentFactory(slug="doomed")
    services.agent_start(agent=agent, actor=Actor.cli())
    services.agent_stop(agent=agent, actor=Actor.cli())
    services.agent_delete(agent=agent, actor=Actor.cli())
    trail = AuditEvent.objects.filter(agent_slug="doomed").values_list("action", flat=True)
    assert sorted(trail) == ["delete", "start", "stop"]
