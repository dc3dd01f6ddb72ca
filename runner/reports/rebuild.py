"""Recomputing the run rollups from the runs (`manage.py rebuildrollups`).

The triggers keep the rollups in step; this is for when they could not (a restore of the runs
table alone, a bulk load with triggers off) or to check them. It works a few days at a time, each
batch in its own transaction: delete the batch's rollup rows, insert them again from its runs.
So it can be run at any time and again, and it never holds a lock for long. On PostgreSQL each
batch first locks the rollup tables against writes, so a run settling meanwhile waits and then
adds itself to the rebuilt rows (the batch's read saw its committed state, or not its change).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta

from django.db import connections, router, transaction
from django.db.models import Max, Min

from runner.models import CycleRun, RunRollup, RunRollupBucket
from runner.reports.rollups import POSTGRES_DELAY, SQLITE_BUCKET, SQLITE_DELAY, day_start

DAYS_PER_BATCH = 7

ROLLUP_INSERT = """
INSERT INTO runner_runrollup
    (agent_id, day, status, "trigger", runs, duration_count, duration_sum, duration_max, delay_count)
SELECT agent_id, {day}, status, "trigger", count(*), count(duration_ms),
       COALESCE(sum(duration_ms), 0), max(duration_ms),
       sum(CASE WHEN slot IS NOT NULL AND started_at IS NOT NULL THEN 1 ELSE 0 END)
FROM runner_cyclerun WHERE queued_at >= %s AND queued_at < %s AND {settled}
GROUP BY agent_id, {day}, status, "trigger"
"""

BUCKET_INSERT = """
INSERT INTO runner_runrollupbucket (agent_id, day, measure, bucket, runs)
SELECT agent_id, day, measure, bucket, count(*) FROM (
    SELECT agent_id, {day} AS day, 1 AS measure, {duration_bucket} AS bucket
    FROM runner_cyclerun
    WHERE queued_at >= %s AND queued_at < %s AND duration_ms IS NOT NULL AND {settled}
    UNION ALL
    SELECT agent_id, {day}, 2, {delay_bucket}
    FROM runner_cyclerun
    WHERE queued_at >= %s AND queued_at < %s AND slot IS NOT NULL AND started_at IS NOT NULL
      AND {settled}
) AS x GROUP BY agent_id, day, measure, bucket
"""

SETTLED = "status NOT IN ('queued', 'running')"  # live runs are not rolled up (see rollups.py)
VENDOR = {
    "postgresql": {
        "day": "(queued_at AT TIME ZONE 'UTC')::date",
        "duration_bucket": "runner_rollup_bucket(duration_ms)",
        "delay_bucket": f"runner_rollup_bucket({POSTGRES_DELAY})",
        "lock": "LOCK TABLE runner_runrollup, runner_runrollupbucket IN EXCLUSIVE MODE",
    },
    "sqlite": {
        "day": "date(queued_at)",
        "duration_bucket": SQLITE_BUCKET.format(v="duration_ms"),
        "delay_bucket": SQLITE_BUCKET.format(v=f"({SQLITE_DELAY})"),
        "lock": None,
    },
}


@dataclass
class RebuildResult:
    batches: int = 0
    days: int = 0
    rollup_rows: int = 0
    bucket_rows: int = 0


def _day_range(using):
    """First and last UTC day that has runs or rollup rows (None, None when there are none)."""
    runs = CycleRun.objects.using(using).aggregate(first=Min("queued_at"), last=Max("queued_at"))
    rows = RunRollup.objects.using(using).aggregate(first=Min("day"), last=Max("day"))
    days = [runs[end] and runs[end].astimezone(UTC).date() for end in ("first", "last")]
    firsts = [d for d in (days[0], rows["first"]) if d]
    lasts = [d for d in (days[1], rows["last"]) if d]
    if not firsts:
        return None, None
    return min(firsts), max(lasts)


def rebuild_day_batch(first, end, *, using) -> tuple[int, int]:
    """Rollup rows of the days [first, end) again from their runs, in one transaction."""
    connection = connections[using]
    sql = VENDOR[connection.vendor]
    low = connection.ops.adapt_datetimefield_value(day_start(first))
    high = connection.ops.adapt_datetimefield_value(day_start(end))
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if sql["lock"]:
            cursor.execute(sql["lock"])
        RunRollup.objects.using(using).filter(day__gte=first, day__lt=end).delete()
        RunRollupBucket.objects.using(using).filter(day__gte=first, day__lt=end).delete()
        cursor.execute(ROLLUP_INSERT.format(**sql, settled=SETTLED), [low, high])
        rollup_rows = cursor.rowcount
        cursor.execute(BUCKET_INSERT.format(**sql, settled=SETTLED), [low, high, low, high])
        return rollup_rows, cursor.rowcount


def rebuild_rollups(*, days_per_batch=DAYS_PER_BATCH, progress=None, using=None) -> RebuildResult:
    """Recompute every rollup row from the runs, `days_per_batch` UTC days per transaction."""
    using = using or router.db_for_write(RunRollup)
    result = RebuildResult()
    first, last = _day_range(using)
    if first is None:
        return result
    day = first
    while day <= last:
        end = min(day + timedelta(days=days_per_batch), last + timedelta(days=1))
        rollup_rows, bucket_rows = rebuild_day_batch(day, end, using=using)
        result.batches += 1
        result.days += (end - day).days
        result.rollup_rows += rollup_rows
        result.bucket_rows += bucket_rows
        if progress is not None:
            progress(day, end, rollup_rows, bucket_rows)
        day = end
    return result
