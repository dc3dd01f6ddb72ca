"""Every periodic job of the runner, declared once, and the one idempotent sync of their rows.

Each job is a django-q2 `Schedule` row, so any cluster runs it and none runs it twice. The rows
are brought in step with this list after every `migrate` (runner.apps) and by
`manage.py pruneruns --sync-schedule`; agents' own cycle schedules are not periodic jobs (see
runner.scheduling). Migrations never import this module: they stay valid whatever moves here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from runner.conf import conf


@dataclass(frozen=True)
class PeriodicJob:
    name: str  # the Schedule row's name
    func: str  # dotted path of the task
    schedule_type: str  # django-q2 Schedule.MINUTES ("I") or Schedule.DAILY ("D")
    minutes: int | None = None
    enabled: Callable[[], bool] = lambda: True
    check: Callable[[], None] = lambda: None  # raises InvalidInput when the setting is bad


def _prune_enabled():
    return bool(conf.RUNNER_PRUNE_RUNS_OLDER_THAN)


def _check_prune_setting():
    from runner.reports import parse_duration

    parse_duration(conf.RUNNER_PRUNE_RUNS_OLDER_THAN, field="RUNNER_PRUNE_RUNS_OLDER_THAN")


WATCHDOG = PeriodicJob(
    # Cluster heartbeat, the periodic reaper of expired leases, and alert reconciliation.
    name="runner:watchdog",
    func="runner.monitoring.watchdog",
    schedule_type="I",
    minutes=1,
)
PRUNE_RUNS = PeriodicJob(
    # Retention: deletes finished runs older than RUNNER_PRUNE_RUNS_OLDER_THAN, once a day.
    name="runner:prune-runs",
    func="runner.retention.prune_runs_scheduled",
    schedule_type="D",
    enabled=_prune_enabled,
    check=_check_prune_setting,
)
PERIODIC_JOBS = (WATCHDOG, PRUNE_RUNS)
# Rows of jobs that no longer exist (the reaper's work moved into the watchdog).
RETIRED = ("runner:reap-expired-leases",)


def sync_periodic_schedules(*, using="default", now=None) -> dict:
    """Create, update or remove each job's Schedule row to match PERIODIC_JOBS (idempotent).

    An existing row keeps its `next_run`, so re-running this never shifts a job's timing.
    Returns {name: "created" | "updated" | "kept" | "removed"}. Raises InvalidInput when an
    enabled job's setting is invalid, before writing anything.
    """
    from django_q.models import Schedule

    now = now or timezone.now()
    for job in PERIODIC_JOBS:
        if job.enabled():
            job.check()
    rows = Schedule.objects.using(using)
    done = {}
    for job in PERIODIC_JOBS:
        if not job.enabled():
            if rows.filter(name=job.name).delete()[0]:
                done[job.name] = "removed"
            continue
        wanted = {
            "func": job.func,
            "schedule_type": job.schedule_type,
            "minutes": job.minutes,
            "repeats": -1,
        }
        schedule, created = rows.get_or_create(name=job.name, defaults={**wanted, "next_run": now})
        if created:
            done[job.name] = "created"
        elif any(getattr(schedule, key) != value for key, value in wanted.items()):
            rows.filter(pk=schedule.pk).update(**wanted)
            done[job.name] = "updated"
        else:
            done[job.name] = "kept"
        rows.filter(name=job.name).exclude(pk=schedule.pk).delete()
    for name in RETIRED:
        if rows.filter(name=name).delete()[0]:
            done[name] = "removed"
    return done
