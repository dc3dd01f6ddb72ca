"""`manage.py agentversions`: list, show, diff and restore from the command line (audited as
`cli`, exit 1 when refused), and `runagent status` showing budgets."""

import getpass
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from runner import services
from runner.actors import Actor
from runner.models import Agent, AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("midday_zone")]


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def versioned(db):
    agent = services.agent_create(
        values={"slug": "delta", "kind": "test-ok", "parameters": {"value": 1}}, actor=Actor.cli()
    )
    services.agent_update_config(
        agent=agent,
        values={"parameters": {"value": 2}, "max_consecutive_failures": 9},
        actor=Actor.cli(),
        reason="looser breaker",
    )
    return agent


def test_list_shows_each_version_with_what_it_changed(versioned):
    out = run("agentversions", "--agent", "delta")
    assert out.splitlines()[0] == "Configuration versions of delta (newest first):"
    assert "v2  " in out and "configure" in out and "reason: looser breaker" in out
    assert "  max_consecutive_failures: 3 -> 9" in out and "  parameters.value: 1 -> 2" in out
    rows = json.loads(run("agentversions", "list", "--agent", "delta", "--json"))
    assert [row["number"] for row in rows] == [2, 1]


def test_show_and_diff(versioned):
    shown = json.loads(run("agentversions", "show", "1", "--agent", "delta", "--json"))
    assert shown["config"]["max_consecutive_failures"] == 3
    diff = run("agentversions", "diff", "1", "--agent", "delta")
    assert diff.splitlines() == [
        "delta: v1 -> v2",
        "  max_consecutive_failures: 3 -> 9",
        "  parameters.value: 1 -> 2",
    ]
    same = run("agentversions", "diff", "2", "2", "--agent", "delta")
    assert same.splitlines() == ["delta: v2 -> v2", "  no changes"]


def test_restore_is_audited_with_the_os_user_as_the_actor(versioned):
    out = run("agentversions", "restore", "1", "--agent", "delta", "--reason", "back to 3")
    assert out.strip() == "delta: version 1 restored as version 3"
    assert Agent.objects.get(slug="delta").max_consecutive_failures == 3
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.source, event.actor_username, event.reason) == (
        "restore_version",
        "cli",
        getpass.getuser(),
        "back to 3",
    )


def test_a_refused_restore_exits_1_and_is_audited(versioned, settings):
    settings.TRADING_MODE = "live"
    for mode in ("live", "dry_run"):  # versions 3 and 4
        services.agent_update_config(
            agent=versioned, values={"trading_mode": mode}, actor=Actor.cli()
        )
    settings.TRADING_MODE = "dry_run"
    with pytest.raises(CommandError) as refused:
        run("agentversions", "restore", "3", "--agent", "delta")
    assert refused.value.returncode == 1
    assert "TRADING_MODE=live" in str(refused.value)
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.outcome, event.source) == ("restore_version", "refused", "cli")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("restore", "9"), "has no configuration version 9"),
        (("show", "x"), "A version is a whole number from 1; got 'x'."),
        (("diff",), "`diff` takes 1..2 version number(s)."),
        (("restore", "1", "--agent", "nobody"), "No agent with slug 'nobody'"),
    ],
)
def test_bad_input_exits_1_with_the_reason(versioned, args, words):
    with pytest.raises(CommandError) as refused:
        run("agentversions", *args, "--agent", "delta") if "--agent" not in args else run(
            "agentversions", *args
        )
    assert refused.value.returncode == 1 and words in str(refused.value)


def test_an_unknown_agent_restore_is_audited_with_the_slug(versioned):
    with pytest.raises(CommandError):
        run("agentversions", "restore", "1", "--agent", "nobody")
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.agent_slug, event.outcome, event.source) == ("nobody", "refused", "cli")


def test_runagent_status_shows_the_budgets(versioned):
    services.agent_update_config(
        agent=versioned, values={"budgets": {"cycles_per_day": 5}}, actor=Actor.cli()
    )
    out = run("runagent", "status", "--agent", "delta")
    [line] = [line for line in out.splitlines() if "budget" in line]
    assert line.startswith("  budget cycles_per_day: 0 cycles of 5 cycles used, 5 cycles left;")
    status = json.loads(run("runagent", "status", "--agent", "delta", "--json"))
    assert status["budgets"][0]["limit"] == 5
