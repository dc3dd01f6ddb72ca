"""The budget gate before every cycle: a spent budget pauses the agent until its day ends.

`runner.execution` calls `budget_gate` before it claims a queued run or a due scheduled slot.
When a budget of the agent is spent (or the next LLM call would cross it), in one transaction
that holds the agent's lock:

- a running agent is paused until the budget day ends, through `agent_pause` with the `system`
  actor and a reason naming each budget, its limit and the amount used; the dispatcher (or the
  watchdog) resumes it then like any pause with an end, and an operator may resume it sooner;
- the cycle is recorded as `skipped` with the same words (the queued run, or the slot);
- each spent budget gets a `BudgetBreach` row (what /metrics counts) and an alert.

Then `BudgetExhausted` (a ClaimRefused) is raised, so nothing runs. If the usage cannot be read
the gate lets the cycle start and logs why (the status shows the error too).
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from runner import alerts
from runner.actors import Actor
from runner.budget_usage import budget_lines
from runner.errors import ClaimRefused
from runner.models import (
    Agent,
    AgentState,
    AuditAction,
    AuditEvent,
    BudgetBreach,
    CycleRun,
    RunStatus,
    RunTrigger,
)
from runner.services.control import agent_pause

logger = logging.getLogger(__name__)


class BudgetExhausted(ClaimRefused):
    """A budget of the agent is spent for the day: the cycle was skipped."""


def budget_gate(*, run_id=None, agent_id=None, slot=None, now=None) -> None:
    """Check the agent's budgets before a cycle: the queued run `run_id`, or the scheduled slot
    `slot` of `agent_id`. Returns when the cycle may run; raises BudgetExhausted otherwise."""
    now = now or timezone.now()
    if run_id is not None:
        run = CycleRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).only("agent_id").first()
        if run is None:
            return  # the claim refuses it with its own words
        agent_id = run.agent_id
    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None or not agent.budgets:
        return
    if run_id is None and not _slot_would_run(agent, slot, now):
        return  # a duplicate or superseded delivery: the claim records it as such
    try:
        lines, _usage = budget_lines(agent, now=now)
    except Exception:
        logger.exception("budgets of agent %s could not be checked; the cycle runs", agent.slug)
        return
    spent = [line for line in lines if line.exhausted]
    if spent:
        _stop_for_budget(agent.pk, spent, run_id=run_id, slot=slot, now=now)


def _slot_would_run(agent, slot, now) -> bool:
    due = agent.next_run
    return (
        agent.state == AgentState.RUNNING
        and due is not None
        and due <= now
        and (slot is None or slot == due)
    )


def _stop_for_budget(agent_id, spent, *, run_id, slot, now):
    resets_at = spent[0].resets_at
    spent_text = "; ".join(line.describe() for line in spent)
    with transaction.atomic():
        locked = Agent.objects.select_for_update().get(pk=agent_id)
        slot = slot or locked.next_run
        event = None
        if locked.state == AgentState.RUNNING:
            reason = (
                f"Budget spent: {spent_text}. Paused until the budget day ends at "
                f"{resets_at.isoformat()}."
            )
            agent_pause(agent=locked, actor=Actor.system(), reason=reason, until=resets_at, now=now)
            event = (
                AuditEvent.objects.filter(agent_id=agent_id, action=AuditAction.PAUSE)
                .order_by("-id")
                .first()
            )
        message = (
            f"Cycle not run: budget spent: {spent_text}. The budget day ends at "
            f"{resets_at.isoformat()}."
        )
        run = _record_skip(locked, run_id=run_id, slot=slot, now=now, message=message)
        for line in spent:
            BudgetBreach.objects.create(
                agent=locked,
                budget=line.budget,
                unit=line.unit,
                limit=line.limit,
                used=line.used,
                day_ends_at=resets_at,
                paused=event is not None,
                run=run,
                audit_event=event,
                created_at=now,
            )
            alerts.budget_exceeded(
                agent=locked,
                budget=line.budget,
                description=line.describe(),
                resets_at=resets_at,
                now=now,
                run_id=run.pk if run else None,
            )
    logger.warning("agent %s: %s", locked.slug, message)
    raise BudgetExhausted(message, state=locked.state)


def _record_skip(agent, *, run_id, slot, now, message) -> CycleRun | None:
    """The cycle's trace: the queued run, or the scheduled slot, marked `skipped`."""
    if run_id is not None:
        CycleRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
            status=RunStatus.SKIPPED, finished_at=now, error_message=message
        )
        return CycleRun.objects.filter(pk=run_id).first()
    try:
        with transaction.atomic():  # a savepoint: a second delivery of the slot is a no-op
            return CycleRun.objects.create(
                agent=agent,
                trigger=RunTrigger.SCHEDULE,
                slot=slot,
                status=RunStatus.SKIPPED,
                queued_at=now,
                finished_at=now,
                error_message=message,
            )
    except IntegrityError:
        return None
