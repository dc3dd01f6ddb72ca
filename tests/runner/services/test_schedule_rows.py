"""The one-statement Schedule upsert writes what scheduling.sync_schedule writes."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule

from runner import scheduling
from runner.services.schedule_rows import write_schedule
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

FIELDS = (
    "name", "func", "hook", "args", "kwargs", "schedule_type", "minutes", "repeats",
    "next_run", "cron", "task", "cluster", "intended_date_kwarg",
)  # fmt: skip


def rows(agent):
    return Schedule.objects.filter(name=scheduling.schedule_name(agent))


def row(agent):
    return Schedule.objects.filter(name=scheduling.schedule_name(agent)).values(*FIELDS).get()


@pytest.mark.parametrize(
    "kind",
    [
        {"interval_minutes": 15},
        {"schedule_kind": "cron", "cron": "*/5 * * * *", "timezone": "Europe/Paris"},
        {"interval_minutes": 30, "jitter_seconds": 20},
    ],
)
def test_the_row_is_the_one_sync_schedule_writes(kind):
    agent = AgentFactory(state="running", next_run=timezone.now() + timedelta(minutes=3), **kind)
    scheduling.sync_schedule(agent)
    expected = row(agent)
    rows(agent).delete()
    write_schedule(agent)  # insert
    assert row(agent) == expected
    agent.interval_minutes += 1
    agent.next_run += timedelta(minutes=7)
    scheduling.sync_schedule(agent)
    expected = row(agent)
    agent.next_run -= timedelta(minutes=1)
    write_schedule(agent)  # update, back to...
    agent.next_run += timedelta(minutes=1)
    with CaptureQueriesContext(connection) as context:
        write_schedule(agent)  # ...the same values again
    assert row(agent) == expected
    assert rows(agent).count() == 1
    assert len(context.captured_queries) == 1  # an update of a row that exists: one statement


def test_a_new_row_takes_one_statement_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no writable CTE: an UPDATE, then the INSERT")
    agent = AgentFactory(state="running", next_run=timezone.now())
    with CaptureQueriesContext(connection) as context:
        write_schedule(agent)
    assert len(context.captured_queries) == 1
    assert rows(agent).count() == 1


def test_an_agent_not_running_has_no_row():
    agent = AgentFactory(state="running", next_run=timezone.now())
    write_schedule(agent)
    agent.state = "paused"
    write_schedule(agent)
    assert not rows(agent).exists()
