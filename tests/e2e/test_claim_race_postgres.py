"""Sixteen real processes race to claim one run on PostgreSQL: exactly one wins."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from runner.models import CycleRun
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
            [sys.executable, "-m", "tests.support.claim_race", str(run.pk), str(start_at)],
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
