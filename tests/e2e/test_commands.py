"""Management commands as a user runs them: real processes on a fresh migrated database."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_process_exit_codes(tmp_path):
    """The command as a user runs it, on a fresh migrated SQLite file."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"}
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "manage.py", *a],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run("migrate", "--noinput").returncode == 0
    unknown = run("runagent", "--once", "--agent", "nobody")
    assert unknown.returncode == 1
    assert "refused: No agent with slug 'nobody'" in unknown.stderr
    create = run(
        "shell",
        "-c",
        "from runner.models import Agent; "
        "Agent.objects.create(slug='ok', name='ok', kind='test-ok')",
    )
    assert create.returncode == 0, create.stderr
    ok = run("runagent", "--once", "--agent", "ok", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "succeeded"


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
