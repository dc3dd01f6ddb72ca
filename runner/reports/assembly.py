"""The report dict: what each section holds, built from `inputs` (the window) and `sql` (the
database's arithmetic).

Read-only. Every number is aggregated by the database; this module decides which counts and
measures make up the report and shapes them into plain JSON-ready values. A run belongs to the
window by its `queued_at` (always set, indexed). Counts come from the run rollups (whole days)
plus the runs of the partial days at the ends (`rollups.py`), so a long window costs a few rows
per agent and day; failures come from the runs (few, and indexed). The admin page, the API, `manage.py runreport`
and the CSV download all print what `run_report()` returns.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.db.models import Count, F, FloatField, Max, OuterRef, Q, Subquery, Window
from django.db.models.functions import Cast, RowNumber
from django.utils.module_loading import import_string

from runner.conf import conf
from runner.errors import InvalidInput
from runner.models import (
    FAILURE_STATUSES,
    FINISHED_STATUSES,
    Agent,
    AuditEvent,
    AuditOutcome,
    CycleRun,
    RunRollupBucket,
    RunStatus,
    RunTrigger,
)
from runner.reports.histogram import RELATIVE_ERROR, histogram_percentiles
from runner.reports.inputs import DEFAULT_BUCKET, bucket_starts, parse_bucket, parse_window
from runner.reports.rollups import RollupWindow, day_start
from runner.reports.sql import (
    PERCENTILES,
    TRUNC,
    MillisBetween,
    aggregate_with_percentiles,
    failure_streaks,
)

# The name the report hooks logged under before the package split, so log filters keep working.
logger = logging.getLogger("runner.reports")
# Up to this many durations and start delays in the window, percentiles are exact (read from the
# runs, cheap at this size); beyond it they come from the rollups' histograms, within
# RELATIVE_ERROR. The report's `percentiles` section says which.
EXACT_PERCENTILES_UP_TO = 20_000


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


def _percentiles(window, *, runs, counts, duration_max) -> tuple[dict, dict]:
    """Duration and start-delay percentiles: exact from the runs while they are few (at most
    `EXACT_PERCENTILES_UP_TO` values), else estimated from the rollups' histograms."""
    if counts["duration"] + counts["delay"] <= EXACT_PERCENTILES_UP_TO:
        has_delay = Q(slot__isnull=False, started_at__isnull=False)
        measures = {
            "duration": (Cast("duration_ms", FloatField()), None),
            "delay": (MillisBetween("started_at", "slot"), has_delay),
        }
        row = aggregate_with_percentiles(runs, {}, measures)
        values = {name: [row[f"{name}_{label}"] for label in PERCENTILES] for name in measures}
        return values, {"method": "exact", "max_relative_error": 0.0}
    found = window.histograms()
    fractions = list(PERCENTILES.values())
    values = {
        "duration": histogram_percentiles(
            found[RunRollupBucket.DURATION], fractions, ceiling=duration_max
        ),
        "delay": histogram_percentiles(found[RunRollupBucket.DELAY], fractions),
    }
    return values, {"method": "histogram", "max_relative_error": round(RELATIVE_ERROR, 4)}


def _run_stats(window, runs) -> dict:
    """Counts by status and trigger, and duration and start-delay statistics.

    Counts come from the rollups (`RollupWindow.grouped`). Start delay is measured for runs with a
    slot (scheduled) that started: how late they started against the time they were scheduled for.
    """
    groups = window.grouped("status", "trigger")
    by_status = dict.fromkeys(RunStatus.values, 0)
    by_trigger = dict.fromkeys(RunTrigger.values, 0)
    counts = {"duration": 0, "delay": 0}
    duration_max = None
    for (status, trigger), row in groups.items():
        by_status[status] = by_status.get(status, 0) + row["runs"]
        by_trigger[trigger] = by_trigger.get(trigger, 0) + row["runs"]
        counts["duration"] += row["duration_count"]
        counts["delay"] += row["delay_count"]
        if row["duration_max"] is not None:
            duration_max = max(duration_max or 0, row["duration_max"])
    values, method = _percentiles(window, runs=runs, counts=counts, duration_max=duration_max)
    finished = sum(by_status[s] for s in FINISHED_STATUSES)
    return {
        "runs": {
            "total": sum(by_status.values()),
            "by_status": by_status,
            "by_trigger": by_trigger,
            "finished": finished,
            "failures": sum(by_status[s] for s in FAILURE_STATUSES),
            "success_rate": _rate(by_status[RunStatus.SUCCEEDED], finished),
        },
        "duration_ms": {
            "count": counts["duration"],
            "median": _ms(values["duration"][0]),
            "p95": _ms(values["duration"][1]),
            "max": _ms(duration_max),
        },
        "start_delay_ms": {
            "count": counts["delay"],
            "median": _ms(values["delay"][0]),
            "p95": _ms(values["delay"][1]),
        },
        "percentiles": method,
    }


def _buckets(window, runs, *, since, until, bucket) -> list[dict]:
    """Runs and failures per bucket: days and weeks from the rollups, hours from the runs."""
    starts = bucket_starts(since, until, bucket)
    found: dict[datetime, dict] = {}
    if bucket == "hour":
        rows = (
            runs.annotate(bucket=TRUNC[bucket]("queued_at", tzinfo=UTC))
            .values("bucket")
            .annotate(runs=Count("id"), failures=Count("id", filter=Q(status__in=FAILURE_STATUSES)))
            .order_by("bucket")
        )
        found = {row["bucket"].astimezone(UTC): row for row in rows}
    else:
        groups = window.grouped("day", "status")
        for (day, status), row in groups.items():
            start = day_start(day)
            if bucket == "week":
                start -= timedelta(days=day.weekday())
            into = found.setdefault(start, {"runs": 0, "failures": 0})
            into["runs"] += row["runs"]
            if status in FAILURE_STATUSES:
                into["failures"] += row["runs"]
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


def _per_agent(window, *, since, until) -> list[dict]:
    """Per agent: counts from the rollups, and the newest run from one index probe per agent."""
    groups = window.grouped("agent_id", "status")
    totals: dict[int, dict] = {}
    for (agent_id, status), row in groups.items():
        into = totals.setdefault(
            agent_id, {"total": 0, "succeeded": 0, "finished": 0, "failures": 0}
        )
        into["total"] += row["runs"]
        into["succeeded"] += row["runs"] if status == RunStatus.SUCCEEDED else 0
        into["finished"] += row["runs"] if status in FINISHED_STATUSES else 0
        into["failures"] += row["runs"] if status in FAILURE_STATUSES else 0
    newest = (
        CycleRun.objects.filter(agent=OuterRef("pk"), queued_at__gte=since, queued_at__lt=until)
        .order_by("-queued_at")
        .values("queued_at")[:1]
    )
    agents = (
        Agent.objects.filter(pk__in=[pk for pk, row in totals.items() if row["total"]])
        .annotate(last_queued_at=Subquery(newest))
        .values_list("pk", "slug", "last_queued_at")
        .order_by("slug")
    )
    return [
        {
            "agent": slug,
            "runs": totals[pk]["total"],
            "succeeded": totals[pk]["succeeded"],
            "failures": totals[pk]["failures"],
            "success_rate": _rate(totals[pk]["succeeded"], totals[pk]["finished"]),
            "last_queued_at": _iso(last_queued_at),
        }
        for pk, slug, last_queued_at in agents
    ]


def report_outputs(agent, since, until) -> tuple[dict, dict]:
    """What the agent produced, from the hooks named in RUNNER_REPORT_EXTRAS.

    Each hook is `callable(agent_or_None, since, until) -> dict`; their dicts are merged. The runner
    never imports agent code itself. A broken hook is reported under its path, never a crash.
    """
    outputs, errors = {}, {}
    for path in conf.RUNNER_REPORT_EXTRAS:
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
    window = RollupWindow(agent=agent, since=since, until=until)
    buckets = _buckets(window, runs, since=since, until=until, bucket=bucket)
    outputs, output_errors = report_outputs(agent, since, until)
    report = {
        "agent": agent.slug if agent is not None else None,
        "window": {"since": _iso(since), "until": _iso(until), "bucket": bucket},
        **_run_stats(window, runs),
        "buckets": buckets,
        "failures_by_type": _failures_by_type(runs),
        "reliability": _reliability(runs),
        "control_actions": _control_actions(agent=agent, since=since, until=until),
        "outputs": outputs,
    }
    if agent is None:
        report["agents"] = _per_agent(window, since=since, until=until)
    if output_errors:
        report["output_errors"] = output_errors
    return report


def run_report_from_params(*, agent=None, since=None, until=None, bucket=None, now=None) -> dict:
    """Parse user-typed window and bucket (errors name the parameter), then build the report."""
    since_at, until_at = parse_window(since, until, now=now)
    return run_report(agent=agent, since=since_at, until=until_at, bucket=parse_bucket(bucket))
