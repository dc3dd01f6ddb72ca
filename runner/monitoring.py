"""The watchdog task and the health report.

The watchdog runs every minute as a django-q2 schedule (declared in runner.periodic). Each run proves that the cluster's scheduler fires and a worker executes, so it
writes the cluster heartbeat that /healthz reads; then it reaps expired leases and reconciles
alerts (opens overdue ones, closes cleared ones).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from runner import alerts, services
from runner.conf import conf
from runner.execution import worker_name
from runner.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

HEARTBEAT_KEEP = timedelta(days=1)


def record_heartbeat(now=None, *, worker=None):
    now = now or timezone.now()
    cluster = settings.Q_CLUSTER.get("name", "")
    WorkerHeartbeat.objects.update_or_create(
        worker=worker or worker_name(), defaults={"cluster": cluster, "seen_at": now}
    )
    WorkerHeartbeat.objects.filter(seen_at__lt=now - HEARTBEAT_KEEP).delete()


def watchdog():
    """Heartbeat, reap expired leases (abandoned-run alerts), end pauses whose time has come (the
    dispatcher does it within a second; this is the backstop without one), reconcile alerts."""
    now = timezone.now()
    record_heartbeat(now)
    reaped = services.runs_reap_expired(now=now)
    resumed = services.resume_expired_pauses(now=now)
    result = alerts.reconcile(now)
    logger.info(
        "watchdog: %s run(s) reaped, %s pause(s) ended, %s alert(s) opened, %s closed",
        reaped,
        resumed,
        result["opened"],
        result["closed"],
    )
    return {"reaped": reaped, "resumed": resumed, **result}


def last_heartbeat():
    return WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()


def health_report(now=None) -> tuple[bool, dict]:
    """(healthy, report). The report says what failed in general terms, never names or secrets."""
    now = now or timezone.now()
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = {"ok": True}
    except Exception as exc:
        logger.error("health: database unreachable: %s", type(exc).__name__)
        checks["database"] = {"ok": False, "reason": "database unreachable"}
        return False, {"status": "unhealthy", "checks": checks}

    max_age = conf.RUNNER_HEARTBEAT_MAX_AGE_SECONDS
    seen = last_heartbeat()
    age = (now - seen).total_seconds() if seen else None
    if age is not None and age <= max_age:
        checks["cluster"] = {"ok": True, "heartbeat_age_seconds": round(age, 1)}
    else:
        reason = (
            "no cluster heartbeat recorded yet"
            if seen is None
            else f"no cluster heartbeat in the last {max_age} s"
        )
        checks["cluster"] = {
            "ok": False,
            "reason": reason + " (is a qcluster running?)",
            "heartbeat_age_seconds": round(age, 1) if age is not None else None,
        }

    overdue = alerts.overdue_agents(now)
    grace = conf.RUNNER_OVERDUE_GRACE_SECONDS
    if overdue:
        checks["schedule"] = {
            "ok": False,
            "reason": f"{len(overdue)} running agent(s) overdue by more than {grace} s",
            "overdue_agents": len(overdue),
        }
    else:
        checks["schedule"] = {"ok": True, "overdue_agents": 0}

    healthy = all(check["ok"] for check in checks.values())
    return healthy, {"status": "ok" if healthy else "unhealthy", "checks": checks}
