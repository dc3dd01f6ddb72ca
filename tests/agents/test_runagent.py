"""`manage.py runagent --once --json` on the default agent prints a real forecaster summary."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from agents.models import Forecast
from runner.models import Agent

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_runagent_once_json_on_the_default_agent_in_process():
    # The migration leaves this agent in place; a flush by an earlier transactional test may not.
    Agent.objects.get_or_create(
        slug=settings.RUNNER_DEFAULT_AGENT,
        defaults={"name": "Default forecaster", "kind": "forecaster", "parameters": {}},
    )
    out = StringIO()
    call_command("runagent", "--once", "--json", stdout=out)
    run = json.loads(out.getvalue())
    assert run["agent"] == settings.RUNNER_DEFAULT_AGENT and run["status"] == "succeeded"
    assert run["error"] is None
    summary = run["summary"]
    assert summary["source"] == "snapshot" and summary["sample_data"] is True
    assert summary["markets_loaded"] == 240 and summary["forecasts"] == 20
    assert Forecast.objects.filter(run_id=run["id"]).count() == 20


@pytest.mark.slow
def test_runagent_once_json_after_migrate_in_a_fresh_database(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        "DJANGO_SECRET_KEY": "test-only-secret-key-for-a-subprocess-0123456789",
        "MARKET_SOURCE": "snapshot",
        "TRADING_MODE": "dry_run",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    migrate = subprocess.run(
        [*manage, "migrate", "--noinput", "-v0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    result = subprocess.run(
        [*manage, "runagent", "--once", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["agent"] == "default" and run["status"] == "succeeded" and run["trigger"] == "cli"
    for key in ("id", "started_at", "finished_at", "duration_ms", "summary", "error"):
        assert key in run
    summary = run["summary"]
    assert summary["source"] == "snapshot" and summary["sample_data"] is True
    assert summary["markets_tradeable"] > 0 and summary["markets_analysed"] == 20
    assert summary["decisions_rejected"] == 20 and summary["outcome"] == "no trade"
    assert set(summary["step_ms"]) >= {"research", "filter", "analyse", "risk", "execute"}
