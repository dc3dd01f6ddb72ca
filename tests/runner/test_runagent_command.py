"""`manage.py runagent --once`: recorded like any cycle, exit 0 on success and 1 otherwise."""

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from runner import services
from runner.actors import Actor
from runner.models import AuditEvent, CycleRun
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def runagent(*args):
    from io import StringIO

    out = StringIO()
    call_command("runagent", "--once", *args, stdout=out)
    return out.getvalue()


def test_success_prints_a_readable_summary():
    AgentFactory(slug="alpha", kind="test-ok", parameters={"value": 3})
    out = runagent("--agent", "alpha")
    assert "agent alpha: succeeded" in out and "value: 3" in out
    run = CycleRun.objects.get(agent__slug="alpha")
    assert run.trigger == "cli" and run.status == "succeeded"


def test_json_output_has_the_contract_fields():
    AgentFactory(slug="alpha", kind="test-ok")
    payload = json.loads(runagent("--agent", "alpha", "--json"))
    for key in (
        "id",
        "agent",
        "status",
        "trigger",
        "started_at",
        "finished_at",
        "duration_ms",
        "summary",
        "error",
    ):
        assert key in payload
    assert payload["agent"] == "alpha" and payload["status"] == "succeeded"
    assert payload["trigger"] == "cli" and payload["error"] is None


def test_failure_exits_1_with_the_error():
    AgentFactory(slug="bad", kind="test-fail")
    with pytest.raises(CommandError) as failed:
        runagent("--agent", "bad")
    assert failed.value.returncode == 1
    assert "failed: BoomError: the agent exploded on purpose" in str(failed.value)
    assert CycleRun.objects.get(agent__slug="bad").status == "failed"


def test_unknown_agent_exits_1():
    with pytest.raises(CommandError) as refused:
        runagent("--agent", "ghost")
    assert refused.value.returncode == 1
    assert "No agent with slug 'ghost'" in str(refused.value)


def test_refused_while_another_cycle_is_in_flight():
    agent = AgentFactory(slug="busy")
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    services.cycle_claim_queued(run_id=queued.pk, worker="other:1")
    with pytest.raises(CommandError) as refused:
        runagent("--agent", "busy")
    assert refused.value.returncode == 1
    assert "refused: A cycle is already in flight" in str(refused.value)


def test_audit_event_names_the_operating_system_user():
    AgentFactory(slug="alpha")
    runagent("--agent", "alpha", "--reason", "manual check")
    event = AuditEvent.objects.get(agent__slug="alpha")
    assert (event.action, event.outcome, event.source) == ("run_once", "applied", "cli")
    assert event.actor_id is None and event.actor_username == getpass.getuser()
    assert event.reason == "manual check"
    assert CycleRun.objects.get(agent__slug="alpha").control_event == event


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
