"""Periodic work is declared once (runner.periodic) and its schedule rows are synced idempotently."""

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_q.models import Schedule

from runner import periodic

pytestmark = pytest.mark.django_db

MIGRATIONS = Path(periodic.__file__).parent / "migrations"


def rows(name):
    return list(Schedule.objects.filter(name=name))


def test_migrate_leaves_one_watchdog_and_sync_is_idempotent():
    # post_migrate already synced once when the test database was made
    (watchdog,) = rows("runner:watchdog")
    assert watchdog.func == "runner.monitoring.watchdog" and watchdog.minutes == 1
    assert periodic.sync_periodic_schedules()["runner:watchdog"] == "kept"
    assert len(rows("runner:watchdog")) == 1


def test_sync_keeps_a_jobs_timing_and_mends_its_definition():
    later = timezone.now() + timedelta(seconds=42)
    Schedule.objects.filter(name="runner:watchdog").update(next_run=later, func="old.path")
    assert periodic.sync_periodic_schedules()["runner:watchdog"] == "updated"
    (watchdog,) = rows("runner:watchdog")
    assert watchdog.func == "runner.monitoring.watchdog" and watchdog.next_run == later


def test_sync_removes_the_retired_reaper_schedule():
    Schedule.objects.create(
        name="runner:reap-expired-leases",
        func="runner.tasks.reap_expired_leases",
        schedule_type=Schedule.MINUTES,
        minutes=1,
    )
    assert periodic.sync_periodic_schedules()["runner:reap-expired-leases"] == "removed"
    assert rows("runner:reap-expired-leases") == []


def test_prune_schedule_follows_the_setting(settings):
    settings.RUNNER_PRUNE_RUNS_OLDER_THAN = "30d"
    call_command("pruneruns", "--sync-schedule")
    call_command("pruneruns", "--sync-schedule")  # idempotent
    (prune,) = rows("runner:prune-runs")
    assert prune.func == "runner.retention.prune_runs_scheduled"
    assert prune.schedule_type == Schedule.DAILY
    settings.RUNNER_PRUNE_RUNS_OLDER_THAN = ""
    assert periodic.sync_periodic_schedules()["runner:prune-runs"] == "removed"
    assert rows("runner:prune-runs") == []


def test_a_bad_prune_setting_is_refused_before_anything_changes(settings):
    settings.RUNNER_PRUNE_RUNS_OLDER_THAN = "soon"
    with pytest.raises(CommandError, match="RUNNER_PRUNE_RUNS_OLDER_THAN"):
        call_command("pruneruns", "--sync-schedule")
    assert rows("runner:prune-runs") == []


@pytest.mark.parametrize("path", sorted(MIGRATIONS.glob("0*.py")), ids=lambda p: p.name)
def test_migrations_do_not_import_live_code(path):
    """A migration that imports the app's modules breaks `migrate` once those modules move."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not {name for name in imported if name.split(".")[0] in ("runner", "agents")}
