"""Reading the run rollups for a report window, exact to the microsecond of `since` and `until`.

Whole UTC days inside the window come from the rollup tables (a few rows per agent and day);
the partial days at either end, and the runs still queued or running (the rollups hold settled
runs only, so a cycle's claim and heartbeats write nothing there), come from the runs
themselves, grouped the same way in the same database, and the two are added up. So every count
equals a count over the runs in the window, whatever time of day `since` and `until` fall on.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta

from django.db.models import Count, Func, IntegerField, Max, Q, Sum
from django.db.models.functions import TruncDate

from runner.models import CycleRun, RunRollup, RunRollupBucket, RunStatus

# Bucket of a value in ms, as migration 0010's triggers compute it.
SQLITE_BUCKET = (
    "CASE WHEN {v} < 1 THEN 0 ELSE CAST(floor(ln({v}) / ln(2.0) * 8) AS INTEGER) + 1 END"
)
SQLITE_DELAY = "(julianday(started_at) - julianday(slot)) * 86400000.0"
POSTGRES_DELAY = "runner_rollup_delay_ms(slot, started_at)"
HAS_DELAY = Q(slot__isnull=False, started_at__isnull=False)
SUMMED = ("runs", "duration_count", "delay_count")
LIVE = (RunStatus.QUEUED, RunStatus.RUNNING)  # never in the rollups


class MillisBucket(Func):
    """The histogram bucket of an expression in ms (`runner/reports/histogram.py`)."""

    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="runner_rollup_bucket(%(expressions)s)")

    def as_sqlite(self, compiler, connection, **extra):
        template = SQLITE_BUCKET.format(v="(%(expressions)s)")
        return self.as_sql(compiler, connection, template=template)


class DelayMillis(Func):
    """`started_at - slot` in ms, the rollups' own expression for it."""

    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return POSTGRES_DELAY, []

    def as_sqlite(self, compiler, connection, **extra):
        return SQLITE_DELAY, []


def day_start(day) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def split_window(since: datetime, until: datetime):
    """(first whole day, day after the last whole day, filter of the runs not in the rollups:
    the partial days at the ends, and the live runs of the whole days).

    With no whole day inside the window, the first two are None and the filter is the window.
    """
    first = since.astimezone(UTC).date()
    if day_start(first) < since:
        first += timedelta(days=1)
    end = until.astimezone(UTC).date()
    if first >= end:
        return None, None, Q(queued_at__gte=since, queued_at__lt=until)
    ends = (
        Q(queued_at__gte=since, queued_at__lt=day_start(first))
        | Q(queued_at__gte=day_start(end), queued_at__lt=until)
        | Q(queued_at__gte=day_start(first), queued_at__lt=day_start(end), status__in=LIVE)
    )
    return first, end, ends


def _scope(queryset, agent):
    return queryset if agent is None else queryset.filter(agent=agent)


def grouped(*, agent=None, since, until, by) -> dict[tuple, dict]:
    """Runs in [since, until) grouped by `by` (names among agent_id, day, status, trigger):
    `{key: {"runs", "duration_count", "delay_count", "duration_max"}}`."""
    first, end, ends = split_window(since, until)
    totals: dict[tuple, dict] = defaultdict(
        lambda: {"runs": 0, "duration_count": 0, "delay_count": 0, "duration_max": None}
    )

    def add(rows):
        for row in rows:
            total = totals[tuple(row[name] for name in by)]
            for name in SUMMED:
                total[name] += row[name] or 0
            if row["duration_max"] is not None:
                total["duration_max"] = max(total["duration_max"] or 0, row["duration_max"])

    if first is not None:
        rollups = _scope(RunRollup.objects.filter(day__gte=first, day__lt=end), agent)
        add(
            rollups.values(*by)
            .annotate(**{name: Sum(name) for name in SUMMED}, duration_max=Max("duration_max"))
            .order_by()
        )
    runs = _scope(CycleRun.objects.filter(ends), agent).annotate(
        day=TruncDate("queued_at", tzinfo=UTC)
    )
    add(
        runs.values(*by)
        .annotate(
            runs=Count("id"),
            duration_count=Count("duration_ms"),
            delay_count=Count("id", filter=HAS_DELAY),
            duration_max=Max("duration_ms"),
        )
        .order_by()
    )
    return dict(totals)


def histograms(*, agent=None, since, until) -> dict[int, dict[int, int]]:
    """`{measure: {bucket: runs}}` for the runs in [since, until)."""
    first, end, ends = split_window(since, until)
    counts: dict[int, dict[int, int]] = {RunRollupBucket.DURATION: {}, RunRollupBucket.DELAY: {}}

    def add(measure, rows):
        into = counts[measure]
        for bucket, runs in rows:
            into[bucket] = into.get(bucket, 0) + runs

    if first is not None:
        buckets = _scope(RunRollupBucket.objects.filter(day__gte=first, day__lt=end), agent)
        rows = buckets.values_list("measure", "bucket").annotate(Sum("runs")).order_by()
        for measure, bucket, runs in rows:
            add(measure, [(bucket, runs)])
    runs = _scope(CycleRun.objects.filter(ends), agent)
    add(
        RunRollupBucket.DURATION,
        runs.filter(duration_ms__isnull=False)
        .annotate(b=MillisBucket("duration_ms"))
        .values_list("b")
        .annotate(Count("id"))
        .order_by(),
    )
    add(
        RunRollupBucket.DELAY,
        runs.filter(HAS_DELAY)
        .annotate(b=MillisBucket(DelayMillis()))
        .values_list("b")
        .annotate(Count("id"))
        .order_by(),
    )
    return counts
