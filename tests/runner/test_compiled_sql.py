"""runner.compiled_sql: the stored statements read and write what the ORM's own do, on both databases."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runner import compiled_sql
from runner.compiled_sql import CompiledRead, update_row
from runner.models import Agent, CycleRun
from runner.services import agent_locks
from tests.factories import AgentFactory, CycleRunFactory

pytestmark = pytest.mark.django_db

COMPARED = (
    "slug",
    "kind",
    "parameters",
    "budgets",
    "active_windows",
    "state",
    "next_run",
    "last_run",
    "fencing_token",
    "created_at",
)


def queued_after(agent_id, now):
    """A read with an annotation that depends on the time, like the finish's."""
    later = CycleRun.objects.filter(agent=OuterRef("pk"), status="queued", not_before__lte=now)
    return (
        Agent.objects.order_by()
        .annotate(has_due=Exists(later.order_by()))
        .filter(Q(pk=agent_id) | Q(pk=agent_id))  # the id twice: refused, see below
    )


@pytest.fixture
def agent():
    now = timezone.now()
    agent = AgentFactory(
        parameters={"question": "é ü", "n": [1, 2]},
        budgets={"cycles_per_day": 5},
        state="running",
        next_run=now + timedelta(seconds=30),
        last_run=now - timedelta(seconds=30),
    )
    CycleRunFactory(agent=agent, started_at=agent.last_run, finished_at=agent.last_run)
    return agent


def test_the_scheduled_claims_read_matches_the_orm(agent):
    with transaction.atomic():
        expected = agent_locks.scheduled_claim_facts(agent.pk).get()
        fetched = agent_locks.SCHEDULED_CLAIM.fetch(agent.pk)
    for name in COMPARED:
        assert getattr(fetched, name) == getattr(expected, name), name
    for name in ("running_run_id", "previous_finished_at", "current_version_id"):
        assert getattr(fetched, name) == getattr(expected, name), name
    assert fetched.previous_finished_at == agent.last_run  # a datetime on SQLite as well
    assert fetched._state.adding is False and fetched._state.db == "default"


def test_the_finishs_read_follows_the_time_it_is_given(agent):
    waiting = CycleRunFactory(
        agent=agent, status="queued", attempt=1, not_before=timezone.now() + timedelta(minutes=5)
    )
    with transaction.atomic():
        now = timezone.now()
        assert agent_locks.FINISH.fetch(agent.pk, now).has_waiting_runs is False
        later = waiting.not_before + timedelta(seconds=1)
        assert agent_locks.FINISH.fetch(agent.pk, later).has_waiting_runs is True
        assert agent_locks.agent_for_finish(agent.pk, later).get().has_waiting_runs is True


def test_a_later_read_runs_the_stored_sql_without_compiling_again(agent, monkeypatch):
    other = AgentFactory(state="running")
    read = CompiledRead(lambda agent_id, _now: Agent.objects.order_by().filter(pk=agent_id))
    assert read.fetch(agent.pk).slug == agent.slug

    def compile_again(using):
        raise AssertionError("compiled twice")

    monkeypatch.setattr(read, "_compile", compile_again)
    with CaptureQueriesContext(transaction.get_connection()) as captured:
        assert read.fetch(other.pk).slug == other.slug
        assert read.fetch(-1) is None
    assert len(captured) == 2
    first, second = (query["sql"].rsplit("=", 1) for query in captured)
    assert first[0] == second[0]  # the same statement, only the id differs
    assert (first[1].strip(), second[1].strip()) == (str(other.pk), "-1")


def test_a_marker_that_is_not_there_exactly_once_is_refused(agent):
    with pytest.raises(ValueError, match="id marker appears 2 times"):
        CompiledRead(queued_after, uses_time=True).fetch(agent.pk, timezone.now())
    without_time = CompiledRead(
        lambda agent_id, _now: Agent.objects.filter(pk=agent_id), uses_time=True
    )
    with pytest.raises(ValueError, match="time marker appears 0 times"):
        without_time.fetch(agent.pk, timezone.now())


def test_update_row_sets_values_adds_one_and_matches_only_its_where(agent):
    other = AgentFactory(run_count=7)
    now = timezone.now()
    updated = update_row(
        Agent,
        where={"id": agent.pk, "fencing_token": agent.fencing_token},
        values={"last_success": now, "parameters": {"question": "ü", "n": [3]}, "last_error": ""},
        add_one=["run_count", "success_count"],
    )
    assert updated == 1
    agent_before, agent.run_count = agent.run_count, None
    agent.refresh_from_db()
    assert agent.run_count == agent_before + 1 and agent.success_count == 1
    assert agent.last_success == now  # a datetime that round-trips on SQLite as well
    assert agent.parameters == {"question": "ü", "n": [3]}
    other.refresh_from_db()
    assert other.run_count == 7  # not touched

    stale = update_row(
        Agent,
        where={"id": agent.pk, "fencing_token": agent.fencing_token + 5},
        add_one=["run_count"],
    )
    assert stale == 0
    agent.refresh_from_db()
    assert agent.run_count == agent_before + 1


def test_update_row_builds_its_statement_once_per_column_set(agent):
    compiled_sql._UPDATES.clear()
    for _ in range(3):
        update_row(Agent, where={"id": agent.pk}, add_one=["run_count"])
    update_row(Agent, where={"id": agent.pk}, add_one=["error_count"])
    assert len(compiled_sql._UPDATES) == 2
    agent.refresh_from_db()
    assert (agent.run_count, agent.error_count) == (3, 1)
