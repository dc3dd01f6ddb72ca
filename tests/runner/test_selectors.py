"""Reads of runner state: every status field, and reads that never write."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runner import selectors
from runner.models import CycleRun
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


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


def test_a_status_read_writes_nothing(run_with_expired_lease):
    agent, dead = run_with_expired_lease
    with CaptureQueriesContext(connection) as queries:
        status = selectors.agent_status(agent)
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert status["current_run"] == dead.pk and status["error_count"] == 0
    assert CycleRun.objects.get(pk=dead.pk).status == "running"
