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


def _empty():
    return {"runs": 0, "duration_count": 0, "delay_count": 0, "duration_max": None}


def _add(total, row):
    for name in SUMMED:
        total[name] += row[name] or 0
    if row["duration_max"] is not None:
        total["duration_max"] = max(total["duration_max"] or 0, row["duration_max"])


class RollupWindow:
    """The runs of one report window (one agent, or all), read from rollups plus loose runs.

    The loose runs (partial days, live runs) are read once, at the rollups' own grain, and
    folded into whatever grouping a section asks for.
    """

    def __init__(self, *, agent=None, since, until):
        self.agent = agent
        self.first, self.end, self.loose_filter = split_window(since, until)
        self._loose = None

    def loose_runs(self):
        return _scope(CycleRun.objects.filter(self.loose_filter), self.agent)

    def _loose_rows(self) -> list[dict]:
        if self._loose is None:
            self._loose = list(
                self.loose_runs()
                .annotate(day=TruncDate("queued_at", tzinfo=UTC))
                .values("agent_id", "day", "status", "trigger")
                .annotate(
                    runs=Count("id"),
                    duration_count=Count("duration_ms"),
                    delay_count=Count("id", filter=HAS_DELAY),
                    duration_max=Max("duration_ms"),
                )
                .order_by()
            )
        return self._loose

    def grouped(self, *by) -> dict[tuple, dict]:
        """Runs grouped by `by` (names among agent_id, day, status, trigger):
        `{key: {"runs", "duration_count", "delay_count", "duration_max"}}`."""
        totals: dict[tuple, dict] = defaultdict(_empty)
        if self.first is not None:
            rollups = RunRollup.objects.filter(day__gte=self.first, day__lt=self.end)
            rows = (
                _scope(rollups, self.agent)
                .values(*by)
                .annotate(**{name: Sum(name) for name in SUMMED}, duration_max=Max("duration_max"))
                .order_by()
            )
            for row in rows:
                _add(totals[tuple(row[name] for name in by)], row)
        for row in self._loose_rows():
            _add(totals[tuple(row[name] for name in by)], row)
        return dict(totals)

    def histograms(self) -> dict[int, dict[int, int]]:
        """`{measure: {bucket: runs}}`."""
        counts: dict[int, dict[int, int]] = {
            RunRollupBucket.DURATION: {},
            RunRollupBucket.DELAY: {},
        }

        def add(measure, bucket, runs):
            counts[measure][bucket] = counts[measure].get(bucket, 0) + runs

        if self.first is not None:
            buckets = RunRollupBucket.objects.filter(day__gte=self.first, day__lt=self.end)
            rows = _scope(buckets, self.agent).values_list("measure", "bucket")
            for measure, bucket, runs in rows.annotate(Sum("runs")).order_by():
                add(measure, bucket, runs)
        loose = self.loose_runs()
        for measure, runs, value in (
            (RunRollupBucket.DURATION, loose.filter(duration_ms__isnull=False), "duration_ms"),
            (RunRollupBucket.DELAY, loose.filter(HAS_DELAY), DelayMillis()),
        ):
            rows = runs.annotate(b=MillisBucket(value)).values_list("b").annotate(Count("id"))
            for bucket, count in rows.order_by():
                add(measure, bucket, count)
        return counts
