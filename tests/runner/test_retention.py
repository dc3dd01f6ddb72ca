from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from runner import retention
from runner.models import AuditEvent, CycleRun
from tests.factories import AgentFactory, AuditEventFactory, CycleRunFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _history():
    """Per status one run that ended 100 days ago, plus recent runs and an old audit trail."""
    agent = AgentFactory()
    old = NOW - timedelta(days=100)
    kept_ids = []
    for status in ("succeeded", "failed", "timed_out", "cancelled", "abandoned", "skipped"):
        CycleRunFactory(agent=agent, status=status, queued_at=old)
    # Never pruned however old: queued (no finish) and running.
    kept_ids.append(
        CycleRunFactory(
            agent=agent, status="queued", queued_at=old, started_at=None, finished_at=None
        ).pk
    )
    kept_ids.append(
        CycleRunFactory(agent=agent, status="running", queued_at=old, finished_at=None).pk
    )
    # Young enough to keep: ended 89 days ago.
    kept_ids.append(
        CycleRunFactory(agent=agent, status="failed", queued_at=NOW - timedelta(days=89)).pk
    )
    event = AuditEventFactory(agent=agent, created_at=old)
    kept_ids.append(
        CycleRunFactory(
            agent=agent,
            status="succeeded",
            queued_at=old - timedelta(days=1),
            control_event=event,
            finished_at=NOW - timedelta(days=1),
        ).pk
    )
    AuditEventFactory(agent=agent, created_at=old - timedelta(days=300))
    return agent, sorted(kept_ids)


def test_prune_deletes_old_finished_runs_in_batches_and_keeps_the_rest():
    _, kept_ids = _history()
    events_before = AuditEvent.objects.count()
    result = retention.prune_runs(older_than="90d", batch_size=4, now=NOW)
    assert result.runs == 6
    assert result.runs_by_status == {
        "abandoned": 1,
        "cancelled": 1,
        "failed": 1,
        "skipped": 1,
        "succeeded": 1,
        "timed_out": 1,
    }
    assert result.batches == 2
    assert sorted(CycleRun.objects.values_list("pk", flat=True)) == kept_ids
    assert AuditEvent.objects.count() == events_before


def test_dry_run_counts_and_changes_nothing():
    _history()
    before = CycleRun.objects.count()
    result = retention.prune_runs(older_than="90d", dry_run=True, now=NOW)
    assert result.runs == 6 and result.dry_run
    assert CycleRun.objects.count() == before


def test_pruneruns_command_reports_and_refuses_bad_ages(capsys):
    agent = AgentFactory()
    CycleRunFactory(agent=agent, status="failed", queued_at=datetime(2020, 1, 1, tzinfo=UTC))
    CycleRunFactory(agent=agent, status="succeeded")
    call_command("pruneruns", "--older-than", "90d", "--dry-run")
    out = capsys.readouterr().out
    assert "Would delete 1 runs" in out and "failed: 1" in out
    assert CycleRun.objects.count() == 2
    call_command("pruneruns", "--older-than", "90d")
    out = capsys.readouterr().out
    assert "Deleted 1 runs" in out and "audit events are kept" in out
    assert list(CycleRun.objects.values_list("status", flat=True)) == ["succeeded"]
    for bad in ("90x", "0d", "-5d"):
        with pytest.raises(CommandError, match="--older-than must be"):
            call_command("pruneruns", f"--older-than={bad}")
    with pytest.raises(CommandError, match="--older-than is required"):
        call_command("pruneruns")
    assert CycleRun.objects.count() == 1


def test_scheduled_task_prunes_by_the_setting(settings):
    agent = AgentFactory()
    CycleRunFactory(agent=agent, status="failed", queued_at=datetime(2020, 1, 1, tzinfo=UTC))
    CycleRunFactory(agent=agent, status="succeeded")
    settings.RUNNER_PRUNE_RUNS_OLDER_THAN = ""
    assert retention.prune_runs_scheduled()["pruned"] is False
    assert CycleRun.objects.count() == 2
    settings.RUNNER_PRUNE_RUNS_OLDER_THAN = "30d"
    assert retention.prune_runs_scheduled()["runs"] == 1
    assert CycleRun.objects.count() == 1
