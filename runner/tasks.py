"""django-q2 task entry points: thin wrappers that claim through services and run the cycle.

Tasks receive ids, never model instances. Each re-checks state through its claim, so a queued
task for a stopped or paused agent, or a second delivery of the same slot, changes nothing but
a `skipped` record.
"""

import logging

from runner import execution, services

logger = logging.getLogger(__name__)


def run_scheduled_cycle(agent_id):
    try:
        claim = services.cycle_claim_scheduled(
            agent_id=int(agent_id), worker=execution.worker_name()
        )
    except services.ClaimRefused as exc:
        logger.info("scheduled cycle of agent %s not run: %s", agent_id, exc.message)
        return {"ran": False, "reason": exc.message}
    if claim is None:
        return {"ran": False, "reason": "nothing due"}
    run = execution.execute_claim(claim)
    return {"ran": True, "run_id": run.pk, "status": run.status}


def run_queued_cycle(run_id):
    try:
        claim = services.cycle_claim_queued(run_id=int(run_id), worker=execution.worker_name())
    except services.ClaimRefused as exc:
        logger.info("queued run %s not run: %s", run_id, exc.message)
        return {"ran": False, "reason": exc.message}
    run = execution.execute_claim(claim)
    return {"ran": True, "run_id": run.pk, "status": run.status}


def reap_expired_leases():
    return services.runs_reap_expired()
