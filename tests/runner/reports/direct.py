"""The report computed straight from the runs, as it was before the rollups: the reference that
the rollup-based report must agree with (tests/runner/reports/test_rollups.py).

Every run of the window is read by the database for every section: percentiles with
`percentile_cont` (or ordered OFFSET reads on SQLite) and failure streaks with window functions
over the whole sequence of runs.
"""

from __future__ import annotations

from datetime import UTC

from django.db import connections
from django.db.models import Case, Count, F, FloatField, IntegerField, Max, Q, Value, When, Window
from django.db.models.functions import Cast, Coalesce, RowNumber

from runner.models import FAILURE_STATUSES, FINISHED_STATUSES, CycleRun, RunStatus, RunTrigger
from runner.reports.inputs import bucket_starts
from runner.reports.sql import TRUNC, EpochSeconds, MillisBetween, aggregate_with_percentiles


def _ms(value):
    return None if value is None else round(float(value), 1)


def _iso(value):
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _rate(part, whole):
    return round(part / whole, 4) if whole else None


def runs_in_window(*, agent=None, since, until):
    runs = CycleRun.objects.filter(queued_at__gte=since, queued_at__lt=until)
    if agent is not None:
        runs = runs.filter(agent=agent)
    return runs


def _run_stats(runs) -> dict:
    """Counts by status and trigger, and duration and start-delay statistics.

    Start delay is measured for runs with a slot (scheduled) that started: how late they started
    against the time they were scheduled for.
    """
    has_delay = Q(slot__isnull=False, started_at__isnull=False)
    aggregates = {
        "total": Count("id"),
        **{f"status_{s}": Count("id", filter=Q(status=s)) for s in RunStatus.values},
        **{f"trigger_{t}": Count("id", filter=Q(trigger=t)) for t in RunTrigger.values},
        "duration_count": Count("duration_ms"),
        "duration_max": Max("duration_ms"),
        "delay_count": Count("id", filter=has_delay),
    }
    measures = {
        "duration": (Cast("duration_ms", FloatField()), None),
        "delay": (MillisBetween("started_at", "slot"), has_delay),
    }
    row = aggregate_with_percentiles(runs, aggregates, measures)

    by_status = {s: row[f"status_{s}"] for s in RunStatus.values}
    finished = sum(by_status[s] for s in FINISHED_STATUSES)
    return {
        "runs": {
            "total": row["total"],
            "by_status": by_status,
            "by_trigger": {t: row[f"trigger_{t}"] for t in RunTrigger.values},
            "finished": finished,
            "failures": sum(by_status[s] for s in FAILURE_STATUSES),
            "success_rate": _rate(by_status[RunStatus.SUCCEEDED], finished),
        },
        "duration_ms": {
            "count": row["duration_count"],
            "median": _ms(row["duration_median"]),
            "p95": _ms(row["duration_p95"]),
            "max": _ms(row["duration_max"]),
        },
        "start_delay_ms": {
            "count": row["delay_count"],
            "median": _ms(row["delay_median"]),
            "p95": _ms(row["delay_p95"]),
        },
    }


def _buckets(runs, *, since, until, bucket) -> list[dict]:
    starts = bucket_starts(since, until, bucket)
    rows = (
        runs.annotate(bucket=TRUNC[bucket]("queued_at", tzinfo=UTC))
        .values("bucket")
        .annotate(runs=Count("id"), failures=Count("id", filter=Q(status__in=FAILURE_STATUSES)))
        .order_by("bucket")
    )
    found = {row["bucket"].astimezone(UTC): row for row in rows}
    return [
        {
            "start": _iso(start),
            "runs": found.get(start, {}).get("runs", 0),
            "failures": found.get(start, {}).get("failures", 0),
        }
        for start in starts
    ]


def _failures_by_type(runs) -> list[dict]:
    """Failures per (error type, status), with the message of the latest one of each group."""
    failed = runs.filter(status__in=FAILURE_STATUSES)
    groups = (
        failed.values("error_type", "status")
        .annotate(count=Count("id"), latest_at=Max("queued_at"))
        .order_by("-count", "error_type", "status")
    )
    newest_first = [F("queued_at").desc(), F("id").desc()]
    latest = (
        failed.annotate(
            newest=Window(
                RowNumber(), partition_by=[F("error_type"), F("status")], order_by=newest_first
            )
        )
        .filter(newest=1)
        .values_list("error_type", "status", "error_message")
    )
    messages = {(error_type, status): message for error_type, status, message in latest}
    return [
        {
            "error_type": row["error_type"],
            "status": row["status"],
            "count": row["count"],
            "latest_at": _iso(row["latest_at"]),
            "latest_message": messages.get((row["error_type"], row["status"]), ""),
        }
        for row in groups
    ]


def _reliability(runs) -> dict:
    """Longest failure streak, MTBF (the mean gap between consecutive failures of one agent) and
    MTTR (the mean time from a streak's first failure to the success that ended it)."""
    longest, gap_total, gaps, mean_recovery, recoveries = failure_streaks(runs)
    return {
        "longest_failure_streak": int(longest or 0),
        "mtbf_seconds": round(float(gap_total) / float(gaps), 1) if gaps else None,
        "mttr_seconds": None if mean_recovery is None else round(float(mean_recovery), 1),
        "recoveries": int(recoveries or 0),
    }


def _per_agent(runs) -> list[dict]:
    rows = (
        runs.values("agent__slug")
        .annotate(
            total=Count("id"),
            succeeded=Count("id", filter=Q(status=RunStatus.SUCCEEDED)),
            finished=Count("id", filter=Q(status__in=FINISHED_STATUSES)),
            failures=Count("id", filter=Q(status__in=FAILURE_STATUSES)),
            last_queued_at=Max("queued_at"),
        )
        .order_by("agent__slug")
    )
    return [
        {
            "agent": row["agent__slug"],
            "runs": row["total"],
            "succeeded": row["succeeded"],
            "failures": row["failures"],
            "success_rate": _rate(row["succeeded"], row["finished"]),
            "last_queued_at": _iso(row["last_queued_at"]),
        }
        for row in rows
    ]


RELIABILITY_SQL = """
WITH seq AS (
    SELECT agent_id, t, is_fail,
           ROW_NUMBER() OVER w AS rn,
           COALESCE(LAG(is_fail) OVER w, -1) AS prev_fail,
           COALESCE(LEAD(is_fail) OVER w, -1) AS next_fail
    FROM ({runs}) AS runs
    WINDOW w AS (PARTITION BY agent_id ORDER BY queued_at, id)
),
edges AS (
    SELECT is_fail, next_fail, rn, t,
           MAX(CASE WHEN is_fail = 1 AND prev_fail <> 1 THEN rn END) OVER e AS start_rn,
           MAX(CASE WHEN is_fail = 1 AND prev_fail <> 1 THEN t END) OVER e AS start_t,
           LEAD(t) OVER e AS next_edge_t
    FROM seq
    WHERE (is_fail = 1 AND (prev_fail <> 1 OR next_fail <> 1)) OR (is_fail = 0 AND prev_fail = 1)
    WINDOW e AS (PARTITION BY agent_id ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
streak_ends AS (SELECT * FROM edges WHERE is_fail = 1 AND next_fail <> 1),
fails AS (
    SELECT COUNT(*) AS n, MIN(t) AS first_t, MAX(t) AS last_t
    FROM seq WHERE is_fail = 1 GROUP BY agent_id
)
SELECT
    (SELECT MAX(rn - start_rn + 1) FROM streak_ends),
    (SELECT SUM(last_t - first_t) FROM fails),
    (SELECT SUM(n - 1) FROM fails),
    (SELECT AVG(next_edge_t - start_t) FROM streak_ends WHERE next_fail = 0),
    (SELECT COUNT(*) FROM streak_ends WHERE next_fail = 0)
"""


def failure_streaks(runs) -> tuple:
    """(longest streak, sum of gaps between failures, number of gaps, mean recovery seconds,
    recoveries) over `runs`, in one query.

    The sequence is each agent's succeeded and failed (failed, timed_out, abandoned) runs in
    queue order (runs of one agent never overlap, so this is also start order); cancelled and
    skipped runs neither break nor extend a streak. One sort numbers the sequence and looks at
    each run's neighbours (LAG/LEAD); only the edges of failure streaks (first failure, last
    failure, the success after it) go on to a second, small window that pairs each streak's end
    with its start. Gaps are between consecutive failures of the same agent; a recovery runs
    from the first failure of a streak to the start of the success that ended it (streaks still
    open at the end of the window are not counted).
    """
    sequence = (
        runs.filter(status__in=[RunStatus.SUCCEEDED, *FAILURE_STATUSES])
        .annotate(
            t=EpochSeconds(Coalesce("started_at", "queued_at")),
            is_fail=Case(
                When(status__in=FAILURE_STATUSES, then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            ),
        )
        .values("agent_id", "id", "queued_at", "t", "is_fail")
        .order_by()
    )
    sql, params = sequence.query.sql_with_params()
    with connections[sequence.db].cursor() as cursor:
        cursor.execute(RELIABILITY_SQL.format(runs=sql), params)
        return cursor.fetchone()


def direct_report(*, agent=None, since, until, bucket="day") -> dict:
    """The run sections of `run_report()` (not control actions or outputs), from the runs alone."""
    runs = runs_in_window(agent=agent, since=since, until=until)
    report = {
        **_run_stats(runs),
        "buckets": _buckets(runs, since=since, until=until, bucket=bucket),
        "failures_by_type": _failures_by_type(runs),
        "reliability": _reliability(runs),
    }
    if agent is None:
        report["agents"] = _per_agent(runs)
    return report
