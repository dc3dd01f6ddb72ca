"""Control transitions: start, stop, pause, resume, run once and set the interval.

Each makes one audited request (see `audit.audited`): lock the agent (given as an Agent or by
its slug), check the input and the transition against the state machine, apply it, record the
event, all in one transaction. `allowed_controls` tells interfaces which
of them would be applied right now, by the same rules, so no interface re-implements them.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from runner import schedules, scheduling
from runner.actors import Actor
from runner.conf import conf
from runner.errors import TransitionRefused
from runner.models import (
    Agent,
    AgentState,
    AuditAction,
    AuditEvent,
    AuditOutcome,
    CycleRun,
    RunStatus,
    RunTrigger,
)
from runner.services import policies
from runner.services.audit import audited, record_event
from runner.services.state import save_state
from runner.validation import parse_interval, parse_parameter_overrides, parse_until

ALLOWED_FROM = {
    AuditAction.START: {AgentState.STOPPED, AgentState.ERROR},
    AuditAction.STOP: {AgentState.RUNNING, AgentState.PAUSED, AgentState.ERROR},
    AuditAction.PAUSE: {AgentState.RUNNING},
    AuditAction.RESUME: {AgentState.PAUSED},
}

REFUSAL_MESSAGES = {
    (AuditAction.START, AgentState.RUNNING): "Agent is already running",
    (AuditAction.START, AgentState.PAUSED): "Agent is paused; resume it instead of starting it",
    (AuditAction.STOP, AgentState.STOPPED): "Agent is not running",
    (AuditAction.PAUSE, AgentState.PAUSED): "Agent is already paused",
    (AuditAction.PAUSE, AgentState.STOPPED): "Agent is not running",
    (AuditAction.PAUSE, AgentState.ERROR): "Agent is not running (it is in error; start it)",
    (AuditAction.RESUME, AgentState.RUNNING): "Agent is not paused",
    (AuditAction.RESUME, AgentState.STOPPED): "Agent is not paused",
    (AuditAction.RESUME, AgentState.ERROR): "Agent is not paused",
}


def _require(agent, action):
    if agent.state not in ALLOWED_FROM[action]:
        message = REFUSAL_MESSAGES.get(
            (action, agent.state), f"Cannot {action} an agent that is {agent.state}"
        )
        raise TransitionRefused(message, state=agent.state)


def cycle_in_flight(agent, *, now=None):
    """The run that makes run-once refuse (overlap policy: skip), or None. A read: a running run
    whose lease ran out, or a queued one past its time to live, no longer counts (the next claim
    or the periodic reaper settles it)."""
    now = now or timezone.now()
    live_running = Q(status=RunStatus.RUNNING, lease_expires_at__gte=now)
    waiting_manual = Q(
        status=RunStatus.QUEUED,
        queued_at__gte=now - timedelta(seconds=conf.RUNNER_QUEUED_RUN_TTL_SECONDS),
    ) & ~Q(trigger__in=(RunTrigger.SCHEDULE, RunTrigger.BACKFILL))
    return (
        CycleRun.objects.filter(live_running | waiting_manual, agent=agent)
        .only("pk", "status")
        .order_by("-id")
        .first()
    )


def allowed_controls(agent, *, now=None) -> list[str]:
    """The control verbs that would be applied right now ("start", ..., "run_once")."""
    verbs = [verb for verb, action in STATE_ACTIONS.items() if agent.state in ALLOWED_FROM[action]]
    if cycle_in_flight(agent, now=now) is None:
        verbs.append("run_once")
    return verbs


def agent_start(*, agent, actor: Actor, reason="", now=None):
    """stopped|error -> running; the first cycle is queued at once and the breaker is reset."""
    now = now or timezone.now()

    def apply(locked, change):
        _require(locked, AuditAction.START)
        locked.state = AgentState.RUNNING
        locked.consecutive_failures = 0
        locked.next_run = now
        locked.paused_next_run = None
        save_state(
            locked, "state", "consecutive_failures", "next_run", "paused_next_run", queue_due=True
        )

    return audited(
        agent=agent, action=AuditAction.START, actor=actor, reason=reason, now=now, apply=apply
    )


def agent_stop(*, agent, actor: Actor, reason="", now=None):
    """running|paused|error -> stopped; the in-flight cycle is asked to stop at its next checkpoint."""
    now = now or timezone.now()

    def apply(locked, change):
        _require(locked, AuditAction.STOP)
        locked.state = AgentState.STOPPED
        locked.next_run = None
        locked.paused_next_run = None
        locked.paused_until = None
        save_state(locked, "state", "next_run", "paused_next_run", "paused_until")
        CycleRun.objects.filter(agent=locked, status=RunStatus.RUNNING).update(
            cancel_requested=True
        )
        policies.drop_waiting(locked, now=now, why="Not run: the agent was stopped")

    return audited(
        agent=agent, action=AuditAction.STOP, actor=actor, reason=reason, now=now, apply=apply
    )


def agent_pause(*, agent, actor: Actor, reason="", until=None, now=None):
    """running -> paused; no new cycles, an in-flight cycle finishes. With `until` (a datetime,
    an ISO string or a duration such as "2h") the runner resumes by itself then."""
    now = now or timezone.now()

    def apply(locked, change):
        ends = parse_until(until, now=now)
        _require(locked, AuditAction.PAUSE)
        locked.state = AgentState.PAUSED
        locked.paused_next_run = locked.next_run
        locked.next_run = None
        locked.paused_until = ends
        if ends is not None:
            change.changes = {"paused_until": {"before": None, "after": ends.isoformat()}}
        save_state(locked, "state", "next_run", "paused_next_run", "paused_until")

    return audited(
        agent=agent, action=AuditAction.PAUSE, actor=actor, reason=reason, now=now, apply=apply
    )


def agent_resume(*, agent, actor: Actor, reason="", now=None):
    """paused -> running; keeps the paused slot if still ahead, else runs now (never a burst)."""
    now = now or timezone.now()

    def apply(locked, change):
        _require(locked, AuditAction.RESUME)
        _resume(locked, now)

    return audited(
        agent=agent, action=AuditAction.RESUME, actor=actor, reason=reason, now=now, apply=apply
    )


def _resume(locked, now):
    held = locked.paused_next_run
    locked.state = AgentState.RUNNING
    locked.next_run = held if held is not None and held > now else now
    locked.paused_next_run = None
    locked.paused_until = None
    save_state(
        locked,
        "state",
        "next_run",
        "paused_next_run",
        "paused_until",
        queue_due=locked.next_run <= now,
    )


def resume_expired_pauses(*, now=None) -> int:
    """Resume every agent whose pause has reached its `until` (the dispatcher on each pass, and
    the watchdog as a backstop). Each resume is a `system` audit event naming the pause it ends.
    Agents another transaction holds are left for the next pass. Returns how many resumed."""
    now = now or timezone.now()
    due = Agent.objects.filter(state=AgentState.PAUSED, paused_until__lte=now)
    resumed = 0
    for agent_id in list(due.values_list("pk", flat=True)):
        with transaction.atomic():
            locked = (
                Agent.objects.select_for_update(skip_locked=True)
                .filter(pk=agent_id, state=AgentState.PAUSED, paused_until__lte=now)
                .first()
            )
            if locked is None:
                continue  # resumed, stopped or re-paused meanwhile, or held by a claim
            until = locked.paused_until
            pause = (
                AuditEvent.objects.filter(
                    agent_id=locked.pk, action=AuditAction.PAUSE, outcome=AuditOutcome.APPLIED
                )
                .order_by("-created_at", "-id")
                .first()
            )
            _resume(locked, now)
            record_event(
                agent=locked,
                action=AuditAction.RESUME,
                actor=Actor.system(),
                outcome=AuditOutcome.APPLIED,
                now=now,
                state_before=AgentState.PAUSED,
                state_after=locked.state,
                changes={"paused_until": {"before": until.isoformat(), "after": None}},
                reason=_pause_ended(until, pause),
            )
        resumed += 1
    return resumed


def _pause_ended(until, pause):
    text = f"The pause until {until.isoformat()} ended"
    if pause is None:
        return text + "."
    who = pause.actor_username or pause.source
    why = f": {pause.reason}" if pause.reason else ""
    return f"{text} (audit event {pause.pk}, paused by {who}{why})."


STATE_ACTIONS = {
    "start": AuditAction.START,
    "stop": AuditAction.STOP,
    "pause": AuditAction.PAUSE,
    "resume": AuditAction.RESUME,
}
TRANSITIONS = {
    "start": agent_start,
    "stop": agent_stop,
    "pause": agent_pause,
    "resume": agent_resume,
}


def agent_run_once(
    *,
    agent,
    actor: Actor,
    reason="",
    now=None,
    trigger=RunTrigger.MANUAL,
    enqueue=True,
    parameters=None,
):
    """Queue one cycle in any state, refused while another cycle is in flight (overlap: skip).

    With `enqueue=False` the caller runs it itself (the CLI runs it in its own process).
    `parameters` override the agent's own for this run only, checked by the agent kind; they
    are kept on the run, its configuration snapshot and the audit event.
    """
    now = now or timezone.now()

    def apply(locked, change):
        overrides = parse_parameter_overrides(locked, parameters)
        in_flight = cycle_in_flight(locked, now=now)
        if in_flight is not None:
            raise TransitionRefused(
                f"A cycle is already in flight (run {in_flight.pk}, {in_flight.status})",
                state=locked.state,
            )
        run = CycleRun.objects.create(
            agent=locked,
            trigger=trigger,
            requested_by=actor.user if actor.user is not None and actor.user.pk else None,
            status=RunStatus.QUEUED,
            queued_at=now,
            trading_mode=locked.effective_trading_mode,
            parameter_overrides=overrides,
        )
        if overrides:
            change.changes = {"parameter_overrides": {"before": None, "after": overrides}}
        change.result = run
        if enqueue:
            scheduling.enqueue_queued_run(run.pk, timeout_seconds=locked.timeout_seconds)

    return audited(
        agent=agent, action=AuditAction.RUN_ONCE, actor=actor, reason=reason, now=now, apply=apply
    )


def agent_set_interval(*, agent, interval_minutes, actor: Actor, reason="", now=None):
    """Any state; 1..10080 minutes; the next run is recomputed from the last start, never past."""
    now = now or timezone.now()

    def apply(locked, change):
        minutes = parse_interval(interval_minutes)
        before = locked.interval_minutes
        locked.interval_minutes = minutes
        change.changes = {"interval_minutes": {"before": before, "after": minutes}}
        retime(locked, now)
        save_state(locked, "interval_minutes", "next_run", "paused_next_run")

    return audited(
        agent=agent,
        action=AuditAction.SET_INTERVAL,
        actor=actor,
        reason=reason,
        now=now,
        apply=apply,
    )


def retime(agent, now):
    """Move the agent's next (or held) run to its new schedule (an interval counts from its
    last start; see schedules.next_run_after_change).

    A slot that is already due stays: its cycle may be queued (start's first cycle is), and an
    interval change must not cancel it; the claim counts the following slot at the new interval.
    """
    next_run = schedules.next_run_after_change(agent, now)
    if agent.state == AgentState.RUNNING and not _due(agent.next_run, now):
        agent.next_run = next_run
    elif agent.state == AgentState.PAUSED and not _due(agent.paused_next_run, now):
        agent.paused_next_run = next_run


def _due(slot, now):
    return slot is not None and slot <= now
