"""The database's side of the report: expressions and the queries that differ per database.

Percentiles are PostgreSQL's `percentile_cont`; on other databases (SQLite) each is two ordered
`OFFSET` reads, interpolated exactly as `percentile_cont` does. Failure streaks and recovery
times are one raw query over the window's failures (gaps and islands). Nothing here loads run
rows into Python, so the cost follows the window (or its failures), not the table.
"""

from __future__ import annotations

import math

from django.db import connections
from django.db.models import (
    Aggregate,
    Case,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber, TruncDay, TruncHour, TruncWeek

from runner.models import FAILURE_STATUSES, RunStatus

TRUNC = {"hour": TruncHour, "day": TruncDay, "week": TruncWeek}
# The percentiles every timing measure reports, by the name they get in the report.
PERCENTILES = {"median": 0.5, "p95": 0.95}


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


class PerDatabaseFloat(Func):
    """A float expression written once per database: `sql[vendor] = (template, arg_joiner)`."""

    output_field = FloatField()
    sql: dict[str, tuple[str, str]] = {}

    def as_vendor_sql(self, compiler, connection, **extra):
        template, arg_joiner = self.sql[connection.vendor]
        return self.as_sql(compiler, connection, template=template, arg_joiner=arg_joiner, **extra)

    as_postgresql = as_sqlite = as_vendor_sql


class MillisBetween(PerDatabaseFloat):
    """`end - start` in milliseconds, as a float, on PostgreSQL and SQLite."""

    sql = {
        # date_part gives double precision; EXTRACT gives numeric, several times slower.
        "postgresql": ("(date_part('epoch', %(expressions)s) * 1000.0)", " - "),
        "sqlite": ("((julianday(%(expressions)s)) * 86400000.0)", ") - julianday("),
    }


class EpochSeconds(PerDatabaseFloat):
    """Seconds since 1970 as a float, so differences of times are plain numbers in raw SQL."""

    sql = {
        "postgresql": ("date_part('epoch', %(expressions)s)", ", "),
        "sqlite": ("((julianday(%(expressions)s) - 2440587.5) * 86400.0)", ", "),
    }


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


def aggregate_with_percentiles(queryset, aggregates, measures) -> dict:
    """`queryset.aggregate(**aggregates)` plus `<measure>_median` and `<measure>_p95` per measure.

    `measures` maps a name to `(expression, condition)`; the condition (a Q, or None for every
    row) picks the rows the measure applies to. On PostgreSQL it is all one aggregate query;
    elsewhere the percentiles come from `percentiles_by_offset`.
    """
    aggregates = dict(aggregates)
    in_postgres = connections[queryset.db].vendor == "postgresql"
    if in_postgres:
        for name, (expression, condition) in measures.items():
            for label, fraction in PERCENTILES.items():
                aggregates[f"{name}_{label}"] = PercentileCont(
                    expression, fraction, filter=condition
                )
    row = queryset.aggregate(**aggregates)
    if not in_postgres:
        for name, (expression, condition) in measures.items():
            rows = queryset if condition is None else queryset.filter(condition)
            values = percentiles_by_offset(rows, expression, list(PERCENTILES.values()))
            row.update(zip([f"{name}_{label}" for label in PERCENTILES], values, strict=True))
    return row


RELIABILITY_SQL = """
WITH f AS ({failures}),
g AS (
    SELECT agent_id, t, frn, nxt,
           CASE WHEN LAG(nxt) OVER (PARTITION BY agent_id ORDER BY frn) = -1 THEN 1 ELSE 0 END
               AS prev_fail
    FROM f
),
edges AS (
    SELECT frn, nxt,
           MAX(CASE WHEN prev_fail = 0 THEN frn END) OVER e AS start_rn,
           MAX(CASE WHEN prev_fail = 0 THEN t END) OVER e AS start_t
    FROM g
    WHERE prev_fail = 0 OR nxt IS NULL OR nxt <> -1
    WINDOW e AS (PARTITION BY agent_id ORDER BY frn ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
streak_ends AS (SELECT * FROM edges WHERE nxt IS NULL OR nxt <> -1),
fails AS (SELECT COUNT(*) AS n, MIN(t) AS first_t, MAX(t) AS last_t FROM f GROUP BY agent_id)
SELECT
    (SELECT MAX(frn - start_rn + 1) FROM streak_ends),
    (SELECT SUM(last_t - first_t) FROM fails),
    (SELECT SUM(n - 1) FROM fails),
    (SELECT AVG(nxt - start_t) FROM streak_ends WHERE nxt <> -1),
    (SELECT COUNT(*) FROM streak_ends WHERE nxt <> -1)
"""


def failure_streaks(runs) -> tuple:
    """(longest streak, sum of gaps between failures, number of gaps, mean recovery seconds,
    recoveries) over `runs`, in one query that reads the failures and one neighbour of each.

    The sequence is each agent's succeeded and failed (failed, timed_out, abandoned) runs in
    queue order (runs of one agent never overlap, so this is also start order); cancelled and
    skipped runs neither break nor extend a streak. Failures are few, so rather than numbering
    every run of the window, each failure looks up the run after it in that sequence (one
    probe of the (agent, queued_at) index): `nxt` is -1 when that run failed too, its start
    time when it succeeded, and null at the end of the window (times are seconds since 1970,
    never -1). A failure whose predecessor failed is the one whose previous failure's `nxt` is
    -1; so streaks, their lengths (failure numbers) and their ends follow from the failures
    alone. Gaps are between consecutive failures of the same agent; a recovery runs from the
    first failure of a streak to the start of the success that ended it (streaks still open at
    the end of the window are not counted).
    """
    moment = EpochSeconds(Coalesce("started_at", "queued_at"))
    after = Q(queued_at__gt=OuterRef("queued_at")) | Q(
        queued_at=OuterRef("queued_at"), id__gt=OuterRef("id")
    )
    following = (
        runs.filter(
            after,
            agent_id=OuterRef("agent_id"),
            status__in=[RunStatus.SUCCEEDED, *FAILURE_STATUSES],
            queued_at__gte=OuterRef("queued_at"),
        )
        .order_by("queued_at", "id")
        .annotate(
            nxt=Case(
                When(status__in=FAILURE_STATUSES, then=Value(-1.0)),
                default=moment,
                output_field=FloatField(),
            )
        )
        .values("nxt")[:1]
    )
    failures = (
        runs.filter(status__in=FAILURE_STATUSES)
        .annotate(
            t=moment,
            nxt=Subquery(following, output_field=FloatField()),
            frn=Window(
                RowNumber(), partition_by=[F("agent_id")], order_by=[F("queued_at"), F("id")]
            ),
        )
        .values("agent_id", "t", "nxt", "frn")
        .order_by()
    )
    sql, params = failures.query.sql_with_params()
    with connections[failures.db].cursor() as cursor:
        cursor.execute(RELIABILITY_SQL.format(failures=sql), params)
        return cursor.fetchone()
