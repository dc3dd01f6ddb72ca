"""`runagent schedule|backfill|configure` and `runagent --once --parameters` (CLI, audited)."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from runner.models import AuditEvent, CycleRun
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def runagent(*args):
    out = StringIO()
    call_command("runagent", *args, stdout=out)
    return out.getvalue()


def test_configure_sets_a_cron_schedule_and_policies_audited_from_the_cli():
    agent = AgentFactory(slug="alpha")
    runagent(
        "configure",
        "--agent",
        "alpha",
        "--set",
        "schedule_kind=cron",
        "--set",
        "cron=30 14 * * mon-fri",
        "--set",
        "timezone=America/New_York",
        "--set",
        "retry_attempts=2",
        "--set",
        'active_windows=[{"days": "mon-fri", "start": "09:30", "end": "16:00"}]',
        "--reason",
        "market hours",
    )
    agent.refresh_from_db()
    assert (agent.schedule_kind, agent.cron, agent.retry_attempts) == (
        "cron",
        "30 14 * * mon-fri",
        2,
    )
    event = AuditEvent.objects.get(agent=agent, action="configure")
    assert event.source == "cli" and event.reason == "market hours"
    assert event.changes["timezone"] == {"before": "UTC", "after": "America/New_York"}


@pytest.mark.parametrize(
    "setting", ["cron=nonsense", "timezone=Nowhere/Land", "jitter_seconds=ten", "color=red", "x"]
)
def test_configure_refuses_bad_values_with_exit_1_and_one_audit_event(setting):
    agent = AgentFactory(slug="alpha")
    extra = ["--set", "schedule_kind=cron"] if setting.startswith("cron") else []
    with pytest.raises(CommandError) as caught:
        runagent("configure", "--agent", "alpha", *extra, "--set", setting)
    assert caught.value.returncode == 1 and "refused" in str(caught.value)
    assert AuditEvent.objects.get(agent=agent).outcome == "refused"
    agent.refresh_from_db()
    assert agent.schedule_kind == "interval"


def test_schedule_previews_fire_times_as_json_and_text():
    AgentFactory(slug="alpha", schedule_kind="cron", cron="0 12 * * *", timezone="Asia/Tokyo")
    data = json.loads(runagent("schedule", "--agent", "alpha", "--count", "3", "--json"))
    assert len(data["fire_times"]) == 3
    for row in data["fire_times"]:
        assert parse_datetime(row["fires_at_local"]).hour == 12
        assert parse_datetime(row["fires_at"]).hour == 3  # Tokyo is UTC+9, no DST
    text = runagent("schedule", "--agent", "alpha")
    assert "next fire times (cron, Asia/Tokyo)" in text and text.count("+09:00") == 5
    with pytest.raises(CommandError):
        runagent("schedule", "--agent", "alpha", "--count", "0")


def test_backfill_from_the_cli_queues_runs_marked_backfill():
    agent = AgentFactory(slug="alpha", interval_minutes=30)
    start = (timezone.now() - timedelta(hours=2)).replace(microsecond=0)
    out = runagent(
        "backfill",
        "--agent",
        "alpha",
        "--from",
        start.isoformat(),
        "--to",
        (start + timedelta(hours=1)).isoformat(),
    )
    assert "queued 3 backfill run(s)" in out
    assert CycleRun.objects.filter(agent=agent, trigger="backfill").count() == 3
    with pytest.raises(CommandError):
        runagent("backfill", "--agent", "alpha", "--from", "2026-01-01")
    assert AuditEvent.objects.filter(agent=agent, action="backfill", outcome="refused").count() == 1


def test_once_with_parameter_overrides():
    agent = AgentFactory(slug="alpha", kind="test-ok", parameters={"value": 1})
    payload = json.loads(
        runagent("--once", "--agent", "alpha", "--parameters", '{"value": 9}', "--json")
    )
    assert payload["summary"]["value"] == 9
    with pytest.raises(CommandError):
        runagent("--once", "--agent", "alpha", "--parameters", "{value: 9}")
    refused = AuditEvent.objects.get(agent=agent, outcome="refused")
    assert refused.action == "run_once" and "JSON object" in refused.refusal_reason
    with pytest.raises(CommandError, match="--parameters goes with --once only"):
        runagent("start", "--agent", "alpha", "--parameters", "{}")
