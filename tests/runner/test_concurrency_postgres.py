"""Guarantees that need a real PostgreSQL: row locks across processes and the append-only trail."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from runner import services
from runner.actors import Actor
from runner.models import AuditEvent, CycleRun
from tests.factories import AgentFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
RACERS = 16


def _database_url():
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.slow
def test_sixteen_processes_claiming_one_agent_give_exactly_one_running_cycle():
    agent = AgentFactory()
    now = timezone.now()
    runs = CycleRun.objects.bulk_create(
        CycleRun(agent=agent, trigger="manual", status="queued", queued_at=now)
        for _ in range(RACERS)
    )
    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_DEBUG": "0"}
    start_at = time.time() + 6  # every racer has imported Django and waits for this moment
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.runner.claim_race", str(run.pk), str(start_at)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in runs
    ]
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert time.time() > start_at
    winners = [r for r in results if r["claimed"]]
    assert len(winners) == 1, results
    statuses = sorted(CycleRun.objects.filter(agent=agent).values_list("status", flat=True))
    assert statuses == ["running"] + ["skipped"] * (RACERS - 1)
    agent.refresh_from_db()
    assert agent.fencing_token == winners[0]["token"] == 1


def test_database_refuses_a_second_running_run_for_one_agent():
    agent = AgentFactory()
    now = timezone.now()
    CycleRun.objects.create(agent=agent, trigger="manual", status="running", queued_at=now)
    with pytest.raises(DatabaseError), transaction.atomic():
        CycleRun.objects.create(agent=agent, trigger="manual", status="running", queued_at=now)


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


def test_deleting_an_agent_keeps_its_audit_trail():
    agent = AgentFactory(slug="doomed")
    services.agent_start(agent=agent, actor=Actor.cli())
    services.agent_stop(agent=agent, actor=Actor.cli())
    services.agent_delete(agent=agent, actor=Actor.cli())
    trail = AuditEvent.objects.filter(agent_slug="doomed").values_list("action", flat=True)
    assert sorted(trail) == ["delete", "start", "stop"]
