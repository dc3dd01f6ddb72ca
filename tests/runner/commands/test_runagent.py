"""`manage.py runagent --once`: recorded like any cycle, exit 0 on success and 1 otherwise."""

import getpass
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from runner import services
from runner.actors import Actor
from runner.models import AuditEvent, CycleRun
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


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


def control(*args):
    """(exit code, stdout, stderr) of `runagent <args>` called in this process."""
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("runagent", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


def last_event(slug):
    return AuditEvent.objects.filter(agent_slug=slug).order_by("-id").first()


@pytest.mark.parametrize(
    "verb, state_before, state_after",
    [
        ("start", "stopped", "running"),
        ("pause", "running", "paused"),
        ("resume", "paused", "running"),
        ("stop", "running", "stopped"),
    ],
)
def test_a_transition_is_applied_and_audited_as_the_os_user(verb, state_before, state_after):
    AgentFactory(slug="alpha", state=state_before)
    code, out, _ = control(verb, "--agent", "alpha", "--reason", "from the shell")
    assert code == 0 and f"alpha: {verb} applied; now {state_after}" in out
    event = last_event("alpha")
    assert (event.action, event.outcome, event.source) == (verb, "applied", "cli")
    assert (event.state_before, event.state_after) == (state_before, state_after)
    assert event.actor_username == getpass.getuser() and event.reason == "from the shell"


def test_a_refused_transition_exits_1_with_the_reason_and_is_audited():
    AgentFactory(slug="alpha", state="stopped")
    code, out, err = control("stop", "--agent", "alpha")
    assert code == 1 and "refused: Agent is not running" in err and out == ""
    event = last_event("alpha")
    assert (event.action, event.outcome, event.refusal_reason) == (
        "stop",
        "refused",
        "Agent is not running",
    )


def test_interval_sets_the_minutes_and_json_prints_the_agent():
    AgentFactory(slug="alpha", interval_minutes=60)
    code, out, _ = control("interval", "45", "--agent", "alpha", "--json")
    assert code == 0
    agent = json.loads(out)
    assert agent["slug"] == "alpha" and agent["interval_minutes"] == 45
    assert last_event("alpha").changes == {"interval_minutes": {"before": 60, "after": 45}}


@pytest.mark.parametrize("value", ["0", "10081", "abc", "2.5", "²", "+-5", None])
def test_bad_interval_exits_1_naming_the_range_and_changes_nothing(value):
    AgentFactory(slug="alpha", interval_minutes=60)
    args = (
        ["interval", "--agent", "alpha"]
        if value is None
        else ["interval", value, "--agent", "alpha"]
    )
    code, out, err = control(*args, "--json")
    assert code == 1 and "interval_minutes must be a whole number from 1 to 10080" in err
    assert json.loads(out)["field"] == "interval_minutes"
    assert AgentFactory._meta.model.objects.get(slug="alpha").interval_minutes == 60
    assert last_event("alpha").outcome == "refused"


def test_status_prints_state_and_counters_and_writes_nothing():
    AgentFactory(slug="alpha", state="running", run_count=3, success_count=2, error_count=1)
    before = AuditEvent.objects.count()
    code, out, _ = control("status", "--agent", "alpha")
    assert code == 0 and "alpha: running" in out
    assert "3 run, 2 succeeded, 1 failed" in out
    code, out, _ = control("status", "--agent", "alpha", "--json")
    assert json.loads(out)["state"] == "running" and json.loads(out)["run_count"] == 3
    assert AuditEvent.objects.count() == before


def test_control_of_an_unknown_agent_exits_1_and_is_audited():
    code, _, err = control("start", "--agent", "ghost")
    assert code == 1 and "No agent with slug 'ghost'" in err
    event = last_event("ghost")
    assert (event.action, event.outcome, event.source) == ("start", "refused", "cli")


@pytest.mark.parametrize(
    "args",
    [(), ("start", "--once"), ("start", "5"), ("dance",)],
    ids=["nothing", "verb-and-once", "value-for-start", "unknown-verb"],
)
def test_usage_errors_change_nothing(args):
    with pytest.raises((CommandError, SystemExit)):
        call_command("runagent", *args)
    assert not AuditEvent.objects.exists()


def test_pause_until_from_the_command_line_and_status_shows_it():
    AgentFactory(slug="alpha", state="running")
    code, out, _ = control("pause", "--agent", "alpha", "--until", "2h", "--reason", "night")
    assert code == 0 and "alpha: pause applied; now paused until " in out
    code, out, _ = control("status", "--agent", "alpha")
    assert "paused until " in out and "(resumes by itself)" in out
    code, _, err = control("resume", "--agent", "alpha", "--until", "2h")
    assert code == 1 and "--until goes with pause only" in err


def test_a_bad_until_on_the_command_line_exits_1_naming_it():
    AgentFactory(slug="alpha", state="running")
    code, out, err = control("pause", "--agent", "alpha", "--until", "someday", "--json")
    assert code == 1 and "until must" in err and json.loads(out)["field"] == "until"
    assert last_event("alpha").outcome == "refused"
