"""Alerts: an agent tripped to error, a run was abandoned, an agent is overdue, a budget is spent.

Each condition is recorded as an `Alert` row keyed by a fingerprint. While an alert with that
fingerprint is open, the condition is not notified again (its `occurrences` count grows instead);
`reconcile()` (run by the watchdog task) opens overdue alerts and closes alerts whose condition
has cleared, so the next occurrence notifies again.

Alerts are raised inside the transaction that caused them (the trip, the reap) and each state
change (opened, closed) is sent once, only after it commits (`transaction.on_commit`), on every
channel runner.notify knows (mail, webhook, Apprise URLs). Delivery failures are recorded on the
alert, never raised: an alert must not break the cycle or the request that triggered it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from runner import notify
from runner.conf import conf
from runner.models import Agent, AgentState, Alert, AlertKind, CycleRun, RunStatus

logger = logging.getLogger(__name__)


def fingerprint(kind, agent_id) -> str:
    return f"{kind}:agent:{agent_id}"


# --- raising (called from runner.services, inside its transaction) ------------------------------


def agent_tripped(*, agent, reason, now):
    """The circuit breaker (or a load failure) put the agent in `error`."""
    return _raise(
        kind=AlertKind.AGENT_ERROR,
        agent=agent,
        now=now,
        subject=f"Agent {agent.slug} tripped to error",
        message=f"Agent {agent.slug} stopped running and is in error: {reason}",
    )


def run_abandoned(*, agent, run_id, worker, now, status=RunStatus.ABANDONED):
    """A running cycle's lease expired (its worker died or hung) and the run was reaped.

    `status` is what the reaper recorded: `abandoned`, or `timed_out` when the reap came after the
    cycle's deadline (a worker killed long ago, or one that hung past its deadline).
    """
    return _raise(
        kind=AlertKind.RUN_ABANDONED,
        agent=agent,
        now=now,
        run_id=run_id,
        subject=f"Agent {agent.slug}: run {run_id} abandoned by its worker",
        message=(
            f"Run {run_id} of agent {agent.slug} was reaped as {status}: worker {worker or '?'} "
            "stopped renewing its lease (killed, crashed, hung or cut off from the database)."
        ),
    )


def agent_overdue(*, agent, now, late_by):
    return _raise(
        kind=AlertKind.AGENT_OVERDUE,
        agent=agent,
        now=now,
        subject=f"Agent {agent.slug} is overdue",
        message=(
            f"Agent {agent.slug} is running but its cycle due at {agent.next_run:%Y-%m-%d %H:%M:%S} "
            f"UTC has not started ({int(late_by.total_seconds())} s late). Is a qcluster running?"
        ),
    )


def budget_exceeded(*, agent, budget, description, resets_at, now, run_id=None):
    """A budget of the agent was found spent before a cycle. One alert per budget and budget
    day: the day's end is part of its fingerprint, and the alert clears when the day ends or
    the agent runs again."""
    return _raise(
        kind=AlertKind.BUDGET_EXCEEDED,
        agent=agent,
        now=now,
        run_id=run_id,
        key=f"{fingerprint(AlertKind.BUDGET_EXCEEDED, agent.pk)}:{budget}:{resets_at.isoformat()}",
        subject=f"Agent {agent.slug}: budget {budget} spent",
        message=(
            f"Agent {agent.slug} spent its budget {description}. No cycle runs until the budget "
            f"day ends at {resets_at.isoformat()} (or an operator resumes it)."
        ),
    )


def _budget_alert_cleared(alert, now) -> bool:
    # budget_exceeded:agent:<id>:<budget>:<ISO end of the budget day>
    resets_at = parse_datetime(alert.fingerprint.split(":", 4)[-1])
    return alert.agent.state == AgentState.RUNNING or resets_at is None or now >= resets_at


def _raise(*, kind, agent, now, subject, message, run_id=None, key=None):
    """Open an alert, or count one more occurrence of the open one. Returns (alert, opened)."""
    key = key or fingerprint(kind, agent.pk)
    try:
        with (
            transaction.atomic()
        ):  # a savepoint: a lost race must not spoil the caller's transaction
            alert = Alert.objects.create(
                kind=kind,
                agent=agent,
                agent_slug=agent.slug,
                run_id=run_id,
                fingerprint=key,
                subject=subject,
                message=message,
                opened_at=now,
                last_seen_at=now,
            )
    except IntegrityError:
        Alert.objects.filter(fingerprint=key, closed_at__isnull=True).update(
            occurrences=F("occurrences") + 1, last_seen_at=now
        )
        logger.info("alert %s still open; not notified again", key)
        return None, False
    logger.warning("alert opened: %s", subject, extra={"alert": kind})
    # robust: a failure while delivering is logged, never raised into the committing caller.
    transaction.on_commit(lambda: notify.alert_opened(alert.pk), robust=True)
    return alert, True


def _close(alert_id, now) -> int:
    """Close one open alert; whoever closes it (one caller, whatever the race) notifies."""
    closed = Alert.objects.filter(pk=alert_id, closed_at__isnull=True).update(closed_at=now)
    if closed:
        transaction.on_commit(lambda: notify.alert_closed(alert_id), robust=True)
    return closed


def close(*, kind, agent_id, now) -> int:
    open_alerts = Alert.objects.filter(
        fingerprint=fingerprint(kind, agent_id), closed_at__isnull=True
    ).values_list("pk", flat=True)
    return sum(_close(alert_id, now) for alert_id in list(open_alerts))


# --- the periodic check -----------------------------------------------------------------------


def overdue_agents(now):
    """Running agents whose next cycle is more than the grace period late: (agent, late_by)."""
    grace = timedelta(seconds=conf.RUNNER_OVERDUE_GRACE_SECONDS)
    late = Agent.objects.filter(state=AgentState.RUNNING, next_run__lt=now - grace)
    return [(agent, now - agent.next_run) for agent in late]


def reconcile(now=None) -> dict:
    """Open alerts for overdue agents and close the alerts whose condition has cleared."""
    now = now or timezone.now()
    opened = closed = 0
    overdue = overdue_agents(now)
    for agent, late_by in overdue:
        with transaction.atomic():
            opened += agent_overdue(agent=agent, now=now, late_by=late_by)[1]
    still_overdue = {fingerprint(AlertKind.AGENT_OVERDUE, agent.pk) for agent, _ in overdue}
    open_alerts = Alert.objects.filter(closed_at__isnull=True).select_related("agent")
    for alert in open_alerts:
        if _cleared(alert, still_overdue, now):
            closed += _close(alert.pk, now)
    return {"opened": opened, "closed": closed}


def _cleared(alert, still_overdue, now) -> bool:
    agent = alert.agent
    if agent is None:  # the agent was deleted
        return True
    if alert.kind == AlertKind.BUDGET_EXCEEDED:
        return _budget_alert_cleared(alert, now)
    if alert.kind == AlertKind.AGENT_OVERDUE:
        return alert.fingerprint not in still_overdue
    if alert.kind == AlertKind.AGENT_ERROR:
        return agent.state != AgentState.ERROR
    if alert.kind == AlertKind.RUN_ABANDONED:
        # Cleared once a cycle of the agent has succeeded since the last abandoned run.
        return CycleRun.objects.filter(
            agent=agent, status=RunStatus.SUCCEEDED, finished_at__gt=alert.last_seen_at
        ).exists()
    return False
