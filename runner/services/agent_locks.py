"""The cycle's locking reads of its agent, each compiled once per process (runner.compiled_sql).

SCHEDULED_CLAIM  the scheduled claim's read: the row locked (skip_locked) with the facts it needs
QUEUED_CLAIM     a queued run's claim: the row locked (skip_locked), nothing more
FINISH           the finish's read: the row locked in the claim's lock order, with whether a retry
                 or backfill run's turn has come

Each `CompiledRead` is built from the queryset function beside it, which tests compare it with.
"""

from __future__ import annotations

from django.db.models import CharField, Exists, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast, Concat
from django_q.models import Schedule

from runner import scheduling
from runner.compiled_sql import CompiledRead
from runner.models import Agent, AgentConfigVersion, CycleRun, RunStatus
from runner.services import policies


def scheduled_claim_facts(agent_id, _now=None):
    """The agent with what a scheduled claim needs to know, read in the one statement that locks
    the row: the run in flight, when the previous run ended, the current configuration version
    and where the agent's Schedule row stands (so a row the dispatcher already moved is left)."""
    running = CycleRun.objects.filter(agent=OuterRef("pk"), status=RunStatus.RUNNING)
    previous = CycleRun.objects.filter(agent=OuterRef("pk"), started_at=OuterRef("last_run"))
    versions = AgentConfigVersion.objects.filter(agent=OuterRef("pk")).order_by("-number")
    name = Concat(Value(scheduling.SCHEDULE_PREFIX), Cast(OuterRef("pk"), CharField()))
    schedule = Schedule.objects.filter(name=name).order_by()
    return (
        Agent.objects.order_by()  # no sort of the one locked row
        .annotate(
            running_run_id=Subquery(running.order_by().values("pk")[:1]),
            previous_finished_at=Subquery(
                previous.order_by("-finished_at").values("finished_at")[:1]
            ),
            current_version_id=Subquery(versions.values("pk")[:1]),
            schedule_next_run=Subquery(schedule.values("next_run")[:1]),
        )
        .select_for_update(skip_locked=True)
        .filter(pk=agent_id)
    )


SCHEDULED_CLAIM = CompiledRead(scheduled_claim_facts)
QUEUED_CLAIM = CompiledRead(
    lambda agent_id, _now: (
        Agent.objects.order_by().select_for_update(skip_locked=True).filter(pk=agent_id)
    )
)


def agent_for_finish(agent_id, now):
    """The agent locked as the claim locks it (same lock order), with whether a retry or backfill
    run's turn has come (what policies.after_run sends)."""
    waiting = CycleRun.objects.filter(
        policies.POLICY_RUN, agent=OuterRef("pk"), status=RunStatus.QUEUED
    ).filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
    return (
        Agent.objects.order_by()
        .select_for_update()
        .annotate(has_waiting_runs=Exists(waiting.order_by()))
        .filter(pk=agent_id)
    )


FINISH = CompiledRead(agent_for_finish, uses_time=True)
