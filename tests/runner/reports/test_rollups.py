"""Run rollups: kept in step by the database's triggers, rebuilt by the command, and the report
read from them equal to the report computed straight from the runs (tests/runner/reports/direct.py)."""

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from runner import reports
from runner.models import CycleRun, RunRollup, RunRollupBucket
from runner.reports import assembly
from runner.reports.formats import report_table
from runner.reports.histogram import RELATIVE_ERROR, bucket_of, histogram_percentiles
from runner.reports.rebuild import rebuild_rollups
from runner.retention import prune_runs
from tests.factories import AgentFactory, CycleRunFactory
from tests.runner.reports.direct import direct_report

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, tzinfo=UTC)
STATUSES = ["succeeded"] * 12 + ["failed"] * 4 + ["timed_out", "abandoned", "cancelled", "skipped"]
TRIGGERS = ["schedule"] * 6 + ["manual", "cli", "backfill"]


def random_history(seed=14, agents=3, runs=220, days=9):
    """Runs at random moments over `days` days, some still queued or running at the end."""
    rng = random.Random(seed)
    made = [AgentFactory(slug=f"agent-{i}") for i in range(agents)]
    for i in range(runs):
        agent = rng.choice(made)
        queued = START + timedelta(seconds=rng.uniform(0, days * 86400))
        status = rng.choice(STATUSES)
        trigger = rng.choice(TRIGGERS)
        slot = (
            queued - timedelta(milliseconds=rng.randint(-5, 500)) if trigger == "schedule" else None
        )
        started = (
            None if status == "skipped" else queued + timedelta(milliseconds=rng.randint(0, 9000))
        )
        duration = None if started is None else int(rng.lognormvariate(7, 1.2))
        if i % 40 == 0 and queued > START + timedelta(days=days - 1):
            status, duration = rng.choice(["queued", "running"]), None
            started = None if status == "queued" else started
        CycleRunFactory(
            agent=agent,
            queued_at=queued,
            status=status,
            trigger=trigger,
            slot=slot,
            attempt=i,  # unique (agent, slot, attempt)
            started_at=started,
            finished_at=None if duration is None else started + timedelta(milliseconds=duration),
            duration_ms=duration,
            error_type=rng.choice(["HTTPError", "ValueError"]) if status in STATUSES[12:18] else "",
            error_message=f"message {i}",
        )
    for offset, status in ((7.4, "queued"), (7.6, "running")):  # live runs inside whole days
        queued = START + timedelta(days=offset)
        started = None if status == "queued" else queued + timedelta(seconds=2)
        CycleRunFactory(
            agent=made[1], queued_at=queued, status=status, slot=queued, started_at=started,
            finished_at=None, duration_ms=None,
        )  # fmt: skip
    return made


def rollup_rows():
    rollups = set(
        RunRollup.objects.values_list(
            "agent_id", "day", "status", "trigger", "runs", "duration_count", "duration_sum",
            "duration_max", "delay_count",
        )
    )  # fmt: skip
    buckets = set(
        RunRollupBucket.objects.values_list("agent_id", "day", "measure", "bucket", "runs")
    )
    return rollups, buckets


def rebuilt_rows():
    """What a rebuild from the runs gives (the tables are left rebuilt)."""
    rebuild_rollups(days_per_batch=2)
    return rollup_rows()


WINDOWS = [
    (START, START + timedelta(days=9)),  # whole days
    (START + timedelta(hours=5, minutes=7), START + timedelta(days=6, hours=20, seconds=3)),
    (START + timedelta(days=2, hours=3), START + timedelta(days=2, hours=19)),  # inside one day
    (START + timedelta(days=3, hours=23), START + timedelta(days=4, hours=1)),  # over midnight
]


def direct_report_full(since, until):
    """A whole exact report (for the formats), with the default threshold."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assembly, "EXACT_PERCENTILES_UP_TO", 10**9)
        return reports.run_report(since=since, until=until)


def _without_percentiles(report):
    trimmed = {key: value for key, value in report.items() if key != "percentiles"}
    trimmed["duration_ms"] = {
        k: v for k, v in report["duration_ms"].items() if k == "count" or k == "max"
    }
    trimmed["start_delay_ms"] = {"count": report["start_delay_ms"]["count"]}
    return trimmed


@pytest.mark.parametrize("bucket", ["day", "week", "hour"])
@pytest.mark.parametrize("window", range(len(WINDOWS)))
def test_report_from_rollups_equals_the_direct_computation(window, bucket):
    agents = random_history()
    since, until = WINDOWS[window]
    for agent in (None, agents[1]):
        report = reports.run_report(agent=agent, since=since, until=until, bucket=bucket)
        direct = direct_report(agent=agent, since=since, until=until, bucket=bucket)
        assert report["percentiles"] == {"method": "exact", "max_relative_error": 0.0}
        assert {key: report[key] for key in direct} == direct


def test_histogram_percentiles_stay_within_the_stated_error(monkeypatch):
    random_history()
    monkeypatch.setattr(assembly, "EXACT_PERCENTILES_UP_TO", -1)
    since, until = WINDOWS[1]
    report = reports.run_report(since=since, until=until)
    direct = direct_report(since=since, until=until)
    assert report["percentiles"] == {"method": "histogram", "max_relative_error": 0.0905}
    assert "estimated from histograms, within 9.05%" in report_table(report)
    assert "estimated" not in report_table(direct_report_full(since, until))
    assert _without_percentiles({key: report[key] for key in direct}) == _without_percentiles(
        direct
    )
    for section, exact_section in (
        (report["duration_ms"], direct["duration_ms"]),
        (report["start_delay_ms"], direct["start_delay_ms"]),
    ):
        for name in ("median", "p95"):
            exact = exact_section[name]
            # Within one bucket: RELATIVE_ERROR of the value, or 1 ms under 1 ms (negative
            # delays count as 0-1 ms); plus the report's rounding to 0.1 ms.
            allowed = RELATIVE_ERROR * abs(exact) + (1.0 + max(0.0, -exact)) + 0.1
            assert abs(section[name] - exact) <= allowed, (name, section[name], exact)


def test_histogram_percentiles_error_bound_on_many_values():
    rng = random.Random(3)
    values = sorted(rng.lognormvariate(6, 2) for _ in range(5000))
    counts = {}
    for value in values:
        counts[bucket_of(value)] = counts.get(bucket_of(value), 0) + 1
    for fraction in (0.01, 0.5, 0.95, 0.999):
        position = fraction * (len(values) - 1)
        low, high = math.floor(position), math.ceil(position)
        exact = values[low] + (position - low) * (values[high] - values[low])
        (estimate,) = histogram_percentiles(counts, [fraction], ceiling=values[-1])
        assert abs(estimate - exact) <= RELATIVE_ERROR * exact + 1.0


def test_triggers_keep_rollups_in_step_through_inserts_updates_and_deletes():
    agents = random_history(runs=120)
    incremental = rollup_rows()
    assert incremental == rebuilt_rows()
    settled = CycleRun.objects.exclude(status__in=["queued", "running"])
    assert sum(row[4] for row in incremental[0]) == settled.count()

    # A run's life: queued, running (a start delay), settled (a duration); a heartbeat moves nothing.
    run = CycleRunFactory(
        agent=agents[0], queued_at=START + timedelta(days=1, hours=2), status="queued",
        trigger="schedule", slot=START + timedelta(days=1, hours=2), attempt=999,
        started_at=None, finished_at=None, duration_ms=None,
    )  # fmt: skip
    CycleRun.objects.filter(pk=run.pk).update(
        status="running", started_at=run.queued_at + timedelta(seconds=3)
    )
    CycleRun.objects.filter(pk=run.pk).update(heartbeat_at=START)
    CycleRun.objects.filter(pk=run.pk).update(
        status="succeeded", finished_at=run.queued_at + timedelta(seconds=9), duration_ms=6000
    )
    assert rollup_rows() == rebuilt_rows()

    # Moved to another day and agent, longest run deleted (its day's max is read again), bulk edits.
    longest = CycleRun.objects.filter(duration_ms__isnull=False).order_by("-duration_ms").first()
    longest.delete()
    CycleRun.objects.filter(pk=run.pk).update(queued_at=START + timedelta(days=7), agent=agents[2])
    CycleRun.objects.filter(status="failed").update(status="succeeded", duration_ms=5)
    CycleRun.objects.filter(trigger="cli").delete()
    assert rollup_rows() == rebuilt_rows()

    # Retention pruning deletes in batches: the rollups lose exactly what it removed.
    prune_runs(older_than="5d", batch_size=7, now=START + timedelta(days=9))
    assert rollup_rows() == rebuilt_rows()
    assert not RunRollup.objects.filter(day__lt=(START + timedelta(days=3)).date()).exists()


def test_trigger_buckets_are_the_documented_buckets():
    agent = AgentFactory()
    durations = [0, 1, 2, 3, 7, 8, 100, 1000, 1023, 1024, 65_000, 3_600_000]
    for i, ms in enumerate(durations):
        CycleRunFactory(agent=agent, queued_at=START, duration_ms=ms, slot=None, attempt=i)
    found = dict(
        RunRollupBucket.objects.filter(measure=RunRollupBucket.DURATION).values_list(
            "bucket", "runs"
        )
    )
    expected = {}
    for ms in durations:
        expected[bucket_of(ms)] = expected.get(bucket_of(ms), 0) + 1
    assert found == expected


def test_rebuild_is_idempotent_and_repairs_the_rollups():
    random_history(runs=80)
    before = rollup_rows()
    RunRollup.objects.filter(status="succeeded").update(runs=0, duration_max=1)
    some = list(RunRollupBucket.objects.values_list("pk", flat=True)[:5])
    RunRollupBucket.objects.filter(pk__in=some).delete()
    RunRollup.objects.create(
        agent=AgentFactory(), day=START.date(), status="failed", trigger="cli", runs=7
    )
    assert rebuilt_rows() == before
    assert rebuilt_rows() == before


def test_rebuildrollups_command(capsys):
    random_history(runs=30, days=3)
    RunRollup.objects.all().delete()
    call_command("rebuildrollups", "--days-per-batch", "1", "--json")
    result = json.loads(capsys.readouterr().out)
    assert result["batches"] == result["days"] >= 3
    settled = CycleRun.objects.exclude(status__in=["queued", "running"])
    assert sum(RunRollup.objects.values_list("runs", flat=True)) == settled.count()
