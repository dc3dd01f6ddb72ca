"""Settling the runs of a worker that a stopping qcluster had to kill.

On SIGTERM a cluster asks its cycles to stop at their next checkpoint; one still running after
RUNNER_SHUTDOWN_GRACE_SECONDS (an agent that does not call checkpoint() for that long) is killed
by the cluster, which then records its run here as `cancelled`, so no run is ever left `running`
until its lease runs out. The write is guarded like the worker's own (status `running`, the
worker's name, the fencing token it held), so whichever of the two lands first wins.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from runner.models import Agent, CycleRun, RunStatus
from runner.services.outcomes import settle_run
from runner.types import Outcome


def runs_cancel_of_killed_worker(*, worker, message, now=None) -> int:
    """Record every run still `running` on `worker` (host:pid) as cancelled; how many it settled."""
    running = CycleRun.objects.filter(status=RunStatus.RUNNING, worker=worker).values_list(
        "pk", "agent_id", "fencing_token"
    )
    settled = 0
    for run_id, agent_id, token in list(running):
        with transaction.atomic():
            agent = Agent.objects.select_for_update().get(pk=agent_id)
            guard = CycleRun.objects.filter(
                pk=run_id, status=RunStatus.RUNNING, worker=worker, fencing_token=token
            )
            outcome = Outcome(
                status=RunStatus.CANCELLED, error_type="WorkerShutdown", error_message=message
            )
            settled += settle_run(agent, guard, outcome, now=now or timezone.now())
    return settled
