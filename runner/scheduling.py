"""Keeps each agent's django-q2 work in step with its runner state.

Called by runner.services inside the transaction of every transition, so the schedule can never
disagree with the state it was written beside. Cycles are queued with `transaction.on_commit`, so a
worker never sees a run or a state change before it is committed.
"""

from django.db import transaction
from django_q.models import Schedule
from django_q.tasks import async_task

from runner.models import AgentState

SCHEDULED_TASK = "runner.tasks.run_scheduled_cycle"
QUEUED_TASK = "runner.tasks.run_queued_cycle"


def schedule_name(agent):
    return f"runner:agent:{agent.pk}"


def sync_schedule(agent):
    """Create, update or remove the agent's Schedule row to match its state and next run."""
    name = schedule_name(agent)
    if agent.state == AgentState.RUNNING and agent.next_run is not None:
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": SCHEDULED_TASK,
                "args": str(agent.pk),
                "schedule_type": Schedule.MINUTES,
                "minutes": agent.interval_minutes,
                "next_run": agent.next_run,
                "repeats": -1,
            },
        )
    else:
        Schedule.objects.filter(name=name).delete()


def enqueue_scheduled_cycle(agent_id):
    """Queue the agent's due cycle once the current transaction commits."""
    transaction.on_commit(lambda: async_task(SCHEDULED_TASK, agent_id))


def enqueue_queued_run(run_id):
    """Queue a run that already exists with status `queued` once the transaction commits."""

    def _send():
        from runner.models import CycleRun

        task_id = async_task(QUEUED_TASK, run_id)
        CycleRun.objects.filter(pk=run_id, task_id="").update(task_id=task_id or "")

    transaction.on_commit(_send)
