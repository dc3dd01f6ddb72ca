"""django-q2 task entry points: thin wrappers around runner.execution and the periodic work.

Tasks receive ids, never model instances. Each re-checks state through its claim, so a queued
task for a stopped or paused agent, or a second delivery of the same slot, changes nothing but
a `skipped` record. Periodic tasks are declared in `runner.periodic`.
"""

import logging
import threading

from django.dispatch import receiver
from django_q.signals import post_execute_in_worker, pre_execute

from runner import execution, scheduling, shutdown
from runner.errors import ClaimRefused

logger = logging.getLogger(__name__)

# The django-q2 task id of the task this worker process is executing, recorded on the run.
_current = threading.local()


@receiver(pre_execute, dispatch_uid="runner.tasks.remember_task_id")
def _remember_task_id(sender, func, task, **kwargs):
    _current.task_id = task.get("id", "")


@receiver(post_execute_in_worker, dispatch_uid="runner.tasks.forget_task_id")
def _forget_task_id(sender, func, task, **kwargs):
    _current.task_id = ""


def _task_id():
    return getattr(_current, "task_id", "")


def _left_for_later():
    """A worker of a stopping cluster claims nothing: the slot stays due and a manual run stays
    queued, and the dispatcher sends either again to a worker that is not stopping."""
    return {"ran": False, "reason": shutdown.LEFT_FOR_LATER}


def run_scheduled_cycle(agent_id, slot=None):
    """One scheduled slot of one agent; `slot` (ISO time) comes from whoever queued it."""
    if shutdown.requested():
        return _left_for_later()
    try:
        run = execution.run_scheduled(
            int(agent_id), slot=scheduling.parse_slot(slot), task_id=_task_id()
        )
    except ClaimRefused as exc:
        logger.info("scheduled cycle of agent %s not run: %s", agent_id, exc.message)
        return {"ran": False, "reason": exc.message}
    if run is None:
        return {"ran": False, "reason": "nothing due"}
    return {"ran": True, "run_id": run.pk, "status": run.status}


def run_queued_cycle(run_id):
    if shutdown.requested():
        return _left_for_later()
    try:
        run = execution.run_queued(int(run_id), task_id=_task_id())
    except ClaimRefused as exc:
        logger.info("queued run %s not run: %s", run_id, exc.message)
        return {"ran": False, "reason": exc.message}
    return {"ran": True, "run_id": run.pk, "status": run.status}
