"""Reads of runner state: every status field, and reads that never write."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runner import selectors, services
from runner.actors import Actor
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


def _run_with_expired_lease(settings):
    """A run whose worker claimed it and vanished: its lease ran out five seconds ago."""
    agent = AgentFactory()
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    past = timezone.now() - timedelta(seconds=settings.RUNNER_LEASE_SECONDS + 5)
    services.cycle_claim_queued(run_id=queued.pk, worker="gone:9", now=past)
    return agent, queued


def test_a_status_read_writes_nothing(settings):
    agent, dead = _run_with_expired_lease(settings)
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
