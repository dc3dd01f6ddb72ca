"""The one reaper: settles runs whose lease ran out and queued runs no worker took in time.

Called from two places only: the claim (for the agent it is about to run) and the periodic
maintenance task (`runner.tasks.maintenance`, every minute). Reads (status, lists, reports) never
reap; they may show a run whose lease has expired until one of those two settles it.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from runner import alerts
from runner.conf import conf
from runner.models import Agent, CycleRun, RunStatus
from runner.services import policies
from runner.services.outcomes import settle_run
from runner.types import Outcome


def lease_duration():
    return timedelta(seconds=conf.RUNNER_LEASE_SECONDS)


def reap_agent(agent, now) -> int:
    """Settle this agent's running runs whose lease ran out (the caller holds the agent lock).

    A run whose worker was still heartbeating after the deadline is `timed_out` (the cycle hung
    past its own deadline and was killed); otherwise it is `abandoned` (its worker died, was
    paused or lost the database before the deadline).
    """
    expired = CycleRun.objects.filter(
        agent=agent, status=RunStatus.RUNNING, lease_expires_at__lt=now
    ).values_list("pk", "deadline_at", "heartbeat_at", "worker")
    reaped = 0
    for run_id, deadline_at, heartbeat_at, worker in list(expired):
        timed_out = (
            deadline_at is not None and heartbeat_at is not None and heartbeat_at >= deadline_at
        )
        outcome = Outcome(
            status=RunStatus.TIMED_OUT if timed_out else RunStatus.ABANDONED,
            error_type="LeaseExpired",
            error_message=(
                f"Worker {worker or '?'} stopped renewing its lease"
                + (" after the cycle passed its deadline" if timed_out else "")
                + "; the run was reaped."
            ),
        )
        guard = CycleRun.objects.filter(
            pk=run_id, status=RunStatus.RUNNING, lease_expires_at__lt=now
        )
        settled = settle_run(agent, guard, outcome, now=now)
        if settled:
            alerts.run_abandoned(
                agent=agent, run_id=run_id, worker=worker, status=outcome.status, now=now
            )
        reaped += settled
    expire_stale_queued(now, agent=agent)
    return reaped


def expire_stale_queued(now, agent=None) -> int:
    """A queued run no worker started in time (no cluster up) is skipped, so it never blocks
    later run-once requests; it counts as neither success nor failure."""
    ttl = conf.RUNNER_QUEUED_RUN_TTL_SECONDS
    stale = CycleRun.objects.filter(
        status=RunStatus.QUEUED, queued_at__lt=now - timedelta(seconds=ttl)
    ).exclude(policies.POLICY_RUN)  # retries and backfill runs wait their backoff or turn
    if agent is not None:
        stale = stale.filter(agent=agent)
    return stale.update(
        status=RunStatus.SKIPPED,
        finished_at=now,
        error_message=f"No worker started this run within {ttl} s (is a qcluster running?)",
    )


def runs_reap_expired(*, now=None) -> int:
    """Reap every agent's expired leases (the periodic task). Returns how many runs it settled.

    Agents whose row another transaction holds are passed over (skip_locked): that transaction is
    a claim, which reaps the agent itself.
    """
    now = now or timezone.now()
    candidates = CycleRun.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now)
    reaped = 0
    for agent_id in set(candidates.values_list("agent_id", flat=True)):
        with transaction.atomic():
            agent = Agent.objects.select_for_update(skip_locked=True).filter(pk=agent_id).first()
            if agent is not None:
                reaped += reap_agent(agent, now)
    expire_stale_queued(now)
    return reaped
