"""Recording how a run ended: its row, the agent's counters, and the circuit breaker.

Shared by the worker's finish and the reaper, so a run settles the same way whoever saw it end.
"""

from __future__ import annotations

import logging

from runner import alerts
from runner.actors import Actor
from runner.compiled_sql import update_row
from runner.models import FAILURE_STATUSES, Agent, AgentState, AuditAction, AuditOutcome, RunStatus
from runner.services import policies
from runner.services.audit import record_event
from runner.services.state import save_state
from runner.types import Outcome

logger = logging.getLogger(__name__)


def settle_run(agent, run_queryset, outcome: Outcome, *, now, run=None) -> bool:
    """Finish the run selected (if still running) and update counters and the breaker.

    The caller holds the agent's lock; `run_queryset` carries the caller's guard (the fencing
    token for a worker, the expired lease for the reaper). False when the guard no longer holds.
    A worker passes its own `run` (then it is not read again, and is given the values written).
    """
    if run is None:
        run = run_queryset.first()
        if run is None:
            return False
    # Workers' clocks may differ slightly: never record a finish before the start.
    finished_at = max(now, run.started_at) if run.started_at else now
    values = {
        "status": outcome.status,
        "finished_at": finished_at,
        "duration_ms": (
            int((finished_at - run.started_at).total_seconds() * 1000) if run.started_at else None
        ),
        "error_type": outcome.error_type[:255],
        "error_message": outcome.error_message,
        "traceback": outcome.traceback,
    }
    if outcome.summary is not None:
        values["summary"] = outcome.summary
    if outcome.log_lines is not None:
        values["log_lines"] = outcome.log_lines
    if not run_queryset.filter(pk=run.pk).update(**values):
        return False
    for name, value in values.items():
        setattr(run, name, value)
    # A failure that will be retried is not yet a failed slot for the breaker.
    retried = policies.schedule_retry(agent, run, outcome.status, now=now) is not None
    _count(agent, outcome, retried=retried, now=now)

    should_trip = (
        outcome.status in FAILURE_STATUSES
        and not retried
        and (outcome.trip or agent.consecutive_failures >= agent.max_consecutive_failures)
    )
    if should_trip and agent.state == AgentState.RUNNING:
        _trip(agent, now=now, why=agent.last_error, load_failure=outcome.trip)
    return True


def _count(agent, outcome, *, retried, now):
    """One UPDATE of the agent's counters, relative (`+ 1` in SQL) so it never loses a concurrent
    count; the agent object is brought up to the same values for the breaker."""
    values, add_one = {"updated_at": now}, ["run_count"]
    agent.run_count += 1
    if outcome.status == RunStatus.SUCCEEDED:
        values.update(consecutive_failures=0, last_success=now)
        add_one.append("success_count")
        agent.success_count += 1
        agent.consecutive_failures = 0
        agent.last_success = now
    elif outcome.status in FAILURE_STATUSES:
        agent.error_count += 1
        agent.last_error = f"{outcome.error_type}: {outcome.error_message}".strip(": ")
        values["last_error"] = agent.last_error
        add_one.append("error_count")
        if not retried:
            agent.consecutive_failures += 1
            add_one.append("consecutive_failures")
    update_row(Agent, where={"id": agent.pk}, values=values, add_one=add_one)
    agent.updated_at = now


def _trip(agent, *, now, why, load_failure):
    """running -> error, with a `system` audit event and an alert."""
    before = agent.state
    agent.state = AgentState.ERROR
    agent.next_run = None
    agent.paused_next_run = None
    save_state(agent, "state", "next_run", "paused_next_run")
    if load_failure:
        reason = f"The agent could not be loaded: {why}"
    else:
        reason = f"{agent.consecutive_failures} consecutive failed cycles; last: {why}"
    record_event(
        agent=agent,
        action=AuditAction.TRIP,
        actor=Actor.system(),
        outcome=AuditOutcome.APPLIED,
        now=now,
        state_before=before,
        state_after=agent.state,
        reason=reason,
    )
    logger.warning("agent %s tripped to error: %s", agent.slug, reason)
    alerts.agent_tripped(agent=agent, reason=reason, now=now)
