"""The report dict: what each section holds, built from `inputs` (the window) and `sql` (the
database's arithmetic).

Read-only. Every number is aggregated by the database; this module decides which counts and
measures make up the report and shapes them into plain JSON-ready values. A run belongs to the
window by its `queued_at` (always set, indexed). The admin page, the API, `manage.py runreport`
and the CSV download all print what `run_report()` returns.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.db.models import Count, F, FloatField, Max, Q, Window
from django.db.models.functions import Cast, RowNumber
from django.utils.module_loading import import_string

from runner.conf import conf
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
from runner.reports.inputs import DEFAULT_BUCKET, bucket_starts, parse_bucket, parse_window
from runner.reports.sql import TRUNC, MillisBetween, aggregate_with_percentiles, failure_streaks

# The name the report hooks logged under before the package split, so log filters keep working.
logger = logging.getLogger("runner.reports")


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
