"""The one report on historical runs, for one agent or all agents, over a window [since, until).

Read-only. Every number is aggregated by the database: counts and maxima with GROUP BY,
percentiles with PostgreSQL's `percentile_cont` (on other databases with two ordered OFFSET
queries per percentile, interpolated exactly as `percentile_cont` does), and failure streaks and
recovery times with window functions (gaps and islands). No run rows are loaded into Python, so the
cost follows the window, not the table.

A run belongs to the window by its `queued_at` (always set, indexed). The admin page, the API,
`manage.py runreport` and the CSV download all print what `run_report()` returns.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connections
from django.db.models import (
    Aggregate,
    Case,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    Q,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, Coalesce, RowNumber, TruncDay, TruncHour, TruncWeek
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.module_loading import import_string

from runner.errors import InvalidInput
from runner.models import (
    FAILURE_STATUSES,
    FINISHED_STATUSES,
    AuditEvent,
    AuditOutcome,
    CycleRun,
    RunStatus,
    RunTrigger,
)

logger = logging.getLogger(__name__)

DEFAULT_SINCE = "7d"
BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
DEFAULT_BUCKET = "day"
# More buckets than this make an unreadable chart and a huge response: ask for a coarser bucket.
MAX_BUCKETS = 2000
MAX_WINDOW = timedelta(days=36600)
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION_PATTERN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
WINDOW_HELP = "a duration before now such as 30m, 12h, 7d or 2w, or an ISO 8601 date or datetime"


# --- Windows --------------------------------------------------------------------------------


def parse_duration(value, *, field) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` -> timedelta; anything else is refused naming the field."""
    match = DURATION_PATTERN.match(str(value))
    if not match:
        raise InvalidInput(
            f"{field} must be a duration such as 30m, 12h, 7d or 2w; got {value!r}.", field=field
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount <= 0:
        raise InvalidInput(f"{field} must be a positive duration; got {value!r}.", field=field)
    try:
        delta = timedelta(**{DURATION_UNITS[unit]: amount})
    except OverflowError:
        delta = MAX_WINDOW * 2
    if delta > MAX_WINDOW:
        raise InvalidInput(
            f"{field} must be at most {MAX_WINDOW.days} days; got {value!r}.", field=field
        )
    return delta


def parse_moment(value, *, field, now) -> datetime:
    """A point in time: `now`, a duration before now (`7d`), or an ISO date or datetime (UTC if naive)."""
    text = str(value).strip()
    if text.lower() == "now":
        return now
    if DURATION_PATTERN.match(text):
        return now - parse_duration(text, field=field)
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            moment = datetime(day.year, day.month, day.day) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidInput(f"{field} must be {WINDOW_HELP}; got {value!r}.", field=field)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


def parse_window(since=None, until=None, *, now=None) -> tuple[datetime, datetime]:
    """[since, until) from the strings users type; since defaults to 7d, until to now."""
    now = now or timezone.now()
    since_at = parse_moment(
        since if since not in (None, "") else DEFAULT_SINCE, field="since", now=now
    )
    until_at = parse_moment(until if until not in (None, "") else "now", field="until", now=now)
    if until_at <= since_at:
        raise InvalidInput(
            f"until must be after since (since={since_at.isoformat()}, until={until_at.isoformat()}).",
            field="until",
        )
    return since_at, until_at


def parse_bucket(value) -> str:
    bucket = DEFAULT_BUCKET if value in (None, "") else str(value).strip().lower()
    if bucket not in BUCKETS:
        raise InvalidInput(
            f"bucket must be one of {', '.join(BUCKETS)}; got {value!r}.", field="bucket"
        )
    return bucket


# --- Database expressions -------------------------------------------------------------------


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile: `percentile_cont(f) WITHIN GROUP (ORDER BY expr)`."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction, **extra):
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be within 0..1")
        super().__init__(expression, fraction=repr(fraction), **extra)


class MillisBetween(Func):
    """`end - start` in milliseconds, as a float, on PostgreSQL and SQLite."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            # date_part gives double precision; EXTRACT gives numeric, several times slower.
            template="(date_part('epoch', %(expressions)s) * 1000.0)",
            arg_joiner=" - ",
            **extra,
        )

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400000.0)",
            arg_joiner=") - julianday(",
            **extra,
        )


class EpochSeconds(Func):
    """Seconds since 1970 as a float, so differences of times are plain numbers in raw SQL."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="date_part('epoch', %(expressions)s)",
            **extra,
        )

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)",
            **extra,
        )


TRUNC = {"hour": TruncHour, "day": TruncDay, "week": TruncWeek}


def percentiles(queryset, expression, fractions) -> list[float | None]:
    """Continuous percentiles of `expression` over the rows of `queryset` (nulls ignored).

    PostgreSQL computes them with `percentile_cont`. Elsewhere each percentile is read with one
    ordered query fetching the (at most two) rows around its position, interpolated the same way,
    so no database ever sends more than two values per percentile.
    """
    if connections[queryset.db].vendor == "postgresql":
        result = queryset.aggregate(
            **{f"p{i}": PercentileCont(expression, f) for i, f in enumerate(fractions)}
        )
        return [result[f"p{i}"] for i in range(len(fractions))]
    return percentiles_by_offset(queryset, expression, fractions)


def percentiles_by_offset(queryset, expression, fractions) -> list[float | None]:
    """The portable way: a count, then per percentile the (at most two) rows around its position."""
    ordered = (
        queryset.annotate(_value=expression)
        .filter(_value__isnull=False)
        .order_by("_value")
        .values_list("_value", flat=True)
    )
    count = ordered.count()
    if not count:
        return [None] * len(fractions)
    answers = []
    for fraction in fractions:
        position = fraction * (count - 1)
        low = math.floor(position)
        high = math.ceil(position)
        around = list(ordered[low : high + 1])
        below, above = float(around[0]), float(around[-1])
        answers.append(below + (position - low) * (above - below))
    return answers


# --- The report -----------------------------------------------------------------------------


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

    On PostgreSQL this is one aggregate query (percentiles included); elsewhere the percentiles
    come from `percentiles_by_offset`. Start delay is measured for runs with a slot (scheduled)
    that started: how late they started against the time they were scheduled for.
    """
    duration = Cast("duration_ms", FloatField())
    delay = MillisBetween("started_at", "slot")
    has_delay = Q(slot__isnull=False, started_at__isnull=False)
    aggregates = {
        "total": Count("id"),
        **{f"status_{s}": Count("id", filter=Q(status=s)) for s in RunStatus.values},
        **{f"trigger_{t}": Count("id", filter=Q(trigger=t)) for t in RunTrigger.values},
        "duration_count": Count("duration_ms"),
        "duration_max": Max("duration_ms"),
        "delay_count": Count("id", filter=has_delay),
    }
    in_postgres = connections[runs.db].vendor == "postgresql"
    if in_postgres:
        aggregates.update(
            duration_median=PercentileCont(duration, 0.5),
            duration_p95=PercentileCont(duration, 0.95),
            delay_median=PercentileCont(delay, 0.5, filter=has_delay),
            delay_p95=PercentileCont(delay, 0.95, filter=has_delay),
        )
    row = runs.aggregate(**aggregates)
    if not in_postgres:
        row["duration_median"], row["duration_p95"] = percentiles_by_offset(
            runs.filter(duration_ms__isnull=False), duration, [0.5, 0.95]
        )
        row["delay_median"], row["delay_p95"] = percentiles_by_offset(
            runs.filter(has_delay), delay, [0.5, 0.95]
        )

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


def bucket_starts(since, until, bucket) -> list[datetime]:
    """Every bucket start from the one holding `since` up to `until` (UTC; weeks start Monday)."""
    since = since.astimezone(UTC)
    if bucket == "hour":
        first = since.replace(minute=0, second=0, microsecond=0)
    else:
        first = since.replace(hour=0, minute=0, second=0, microsecond=0)
        if bucket == "week":
            first -= timedelta(days=first.weekday())
    step = BUCKETS[bucket]
    count = math.ceil((until - first) / step)
    if count > MAX_BUCKETS:
        raise InvalidInput(
            f"bucket {bucket!r} gives {count} buckets for this window (at most {MAX_BUCKETS}); "
            "choose a coarser bucket or a shorter window.",
            field="bucket",
        )
    return [first + i * step for i in range(count)]


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


def _reliability(runs) -> dict:
    """Longest failure streak, mean time between failures and mean time to recovery.

    The sequence is each agent's succeeded and failed (failed, timed_out, abandoned) runs in
    queue order (runs of one agent never overlap, so this is also start order); cancelled and skipped runs neither break nor extend a streak. One sort numbers
    the sequence and looks at each run's neighbours (LAG/LEAD); only the edges of failure streaks
    (first failure, last failure, the success after it) go on to a second, small window that pairs
    each streak's end with its start. MTBF is the mean gap between consecutive failures of the
    same agent; MTTR is the mean time from the first failure of a streak to the start of the
    success that ended it (streaks still open at the end of the window are not counted).
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
        longest, gap_total, gaps, mean_recovery, recoveries = cursor.fetchone()
    return {
        "longest_failure_streak": int(longest or 0),
        "mtbf_seconds": round(float(gap_total) / float(gaps), 1) if gaps else None,
        "mttr_seconds": None if mean_recovery is None else round(float(mean_recovery), 1),
        "recoveries": int(recoveries or 0),
    }


def _control_actions(*, agent, since, until) -> dict:
    events = AuditEvent.objects.filter(created_at__gte=since, created_at__lt=until)
    if agent is not None:
        events = events.filter(agent_id=agent.pk)
    by_actor = (
        events.values("actor_username", "source")
        .annotate(
            count=Count("id"),
            applied=Count("id", filter=Q(outcome=AuditOutcome.APPLIED)),
            refused=Count("id", filter=Q(outcome=AuditOutcome.REFUSED)),
        )
        .order_by("-count", "actor_username", "source")
    )
    by_action = events.values("action").annotate(count=Count("id")).order_by("-count", "action")
    rows = [
        {
            "actor": row["actor_username"],
            "source": row["source"],
            "count": row["count"],
            "applied": row["applied"],
            "refused": row["refused"],
        }
        for row in by_actor
    ]
    return {
        "total": sum(row["count"] for row in rows),
        "by_actor_source": rows,
        "by_action": {row["action"]: row["count"] for row in by_action},
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


def report_outputs(agent, since, until) -> tuple[dict, dict]:
    """What the agent produced, from the hooks named in RUNNER_REPORT_EXTRAS.

    Each hook is `callable(agent_or_None, since, until) -> dict`; their dicts are merged. The runner
    never imports agent code itself. A broken hook is reported under its path, never a crash.
    """
    outputs, errors = {}, {}
    for path in getattr(settings, "RUNNER_REPORT_EXTRAS", []) or []:
        try:
            produced = import_string(path)(agent, since, until)
            if not isinstance(produced, dict):
                raise TypeError(f"returned {type(produced).__name__}, not dict")
            outputs.update(produced)
        except Exception as exc:  # a reporting hook must never take the report down
            logger.exception("report hook %s failed", path)
            errors[path] = f"{type(exc).__name__}: {exc}"
    return outputs, errors


def run_report(
    *, agent=None, since: datetime, until: datetime, bucket: str = DEFAULT_BUCKET
) -> dict:
    """The report as plain JSON-ready values (strings, numbers, lists, dicts, None)."""
    bucket = parse_bucket(bucket)
    if until <= since:
        raise InvalidInput("until must be after since.", field="until")
    runs = runs_in_window(agent=agent, since=since, until=until)
    buckets = _buckets(runs, since=since, until=until, bucket=bucket)
    outputs, output_errors = report_outputs(agent, since, until)
    report = {
        "agent": agent.slug if agent is not None else None,
        "window": {"since": _iso(since), "until": _iso(until), "bucket": bucket},
        **_run_stats(runs),
        "buckets": buckets,
        "failures_by_type": _failures_by_type(runs),
        "reliability": _reliability(runs),
        "control_actions": _control_actions(agent=agent, since=since, until=until),
        "outputs": outputs,
    }
    if agent is None:
        report["agents"] = _per_agent(runs)
    if output_errors:
        report["output_errors"] = output_errors
    return report


def run_report_from_params(*, agent=None, since=None, until=None, bucket=None, now=None) -> dict:
    """Parse user-typed window and bucket (errors name the parameter), then build the report."""
    since_at, until_at = parse_window(since, until, now=now)
    return run_report(agent=agent, since=since_at, until=until_at, bucket=parse_bucket(bucket))
