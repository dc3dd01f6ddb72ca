"""The only code that changes runner state, writes cycle runs or writes audit events.

Admin actions, API views, management commands and django-q2 tasks each make one call in here.
Every control call locks the agent row, checks the transition, applies it and records one audit
event in the same transaction; a refused call records a `refused` event, commits it, and then
raises a `RunnerError`, so refusals are audited but change nothing else.

Cycle lifecycle (at most one running cycle per agent, on any number of workers):
  claim      lock the agent row (skip_locked), reap expired leases, refuse if a run is running,
             bump the agent's fencing token, mark the run `running` with a lease;
  heartbeat  renew the lease (filtered on the fencing token);
  checkpoint raise if stop was requested, the deadline passed or the lease was lost;
  finish     write the outcome and counters, filtered on the fencing token, so a worker that lost
             its lease (killed, paused, partitioned) can never overwrite what happened since.
The partial unique index on running runs and unique (agent, slot) back this on every database.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from runner import alerts, scheduling
from runner.actors import Actor
from runner.errors import (
    CycleCancelled,
    CycleDeadlineExceeded,
    InvalidInput,
    LeaseLost,
    RunnerError,
    TransitionRefused,
)
from runner.models import (
    FAILURE_STATUSES,
    Agent,
    AgentState,
    AuditAction,
    AuditEvent,
    AuditOutcome,
    CycleRun,
    RunStatus,
    RunTrigger,
)
from runner.validation import REASON_MAX_LENGTH, parse_interval, parse_reason

logger = logging.getLogger(__name__)

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

# How long a claim retries an agent row that another transaction holds before giving up.
CLAIM_LOCK_ATTEMPTS = 40
CLAIM_LOCK_PAUSE_SECONDS = 0.05


def lease_duration():
    return timedelta(seconds=settings.RUNNER_LEASE_SECONDS)


# --- audit ------------------------------------------------------------------------------------


def _record_event(
    *,
    agent,
    action,
    actor: Actor,
    outcome,
    now,
    state_before="",
    state_after="",
    changes=None,
    reason="",
    refusal_reason="",
    agent_slug=None,
):
    return AuditEvent.objects.create(
        agent_id=agent.pk if agent is not None else None,
        agent_slug=agent_slug if agent_slug is not None else (agent.slug if agent else ""),
        action=action,
        outcome=outcome,
        refusal_reason=refusal_reason,
        actor=actor.user if actor.user is not None and actor.user.pk else None,
        actor_username=actor.username,
        source=actor.source,
        state_before=state_before,
        state_after=state_after,
        changes=changes or {},
        reason=reason,
        client_ip=actor.client_ip or None,
        request_id=actor.request_id,
        created_at=now,
    )


@dataclass
class _Change:
    """What an applied control call did, filled in by the transition and read by the recorder."""

    result: object = None
    changes: dict | None = None


def _control(*, agent, action, actor: Actor, reason, now, apply):
    """Lock, check, apply and audit one control request; refused requests are audited, then raised.

    `apply(locked_agent, change)` raises RunnerError before writing anything when it refuses.
    """
    now = now or timezone.now()
    try:
        reason = parse_reason(reason)
    except InvalidInput as exc:
        _refuse(agent=agent, action=action, actor=actor, now=now, error=exc, reason="")
        raise
    refusal = None
    with transaction.atomic():
        locked = Agent.objects.select_for_update().get(pk=agent.pk)
        before = locked.state
        change = _Change()
        try:
            apply(locked, change)
        except RunnerError as exc:
            exc.state = exc.state or before
            refusal = exc
            _record_event(
                agent=locked,
                action=action,
                actor=actor,
                outcome=AuditOutcome.REFUSED,
                now=now,
                state_before=before,
                state_after=before,
                reason=reason,
                refusal_reason=exc.message,
            )
        else:
            event = _record_event(
                agent=locked,
                action=action,
                actor=actor,
                outcome=AuditOutcome.APPLIED,
                now=now,
                state_before=before,
                state_after=locked.state,
                changes=change.changes,
                reason=reason,
            )
            if isinstance(change.result, CycleRun):
                CycleRun.objects.filter(pk=change.result.pk).update(control_event=event)
                change.result.control_event = event
    if refusal is not None:
        raise refusal
    _refresh(agent, locked)
    return change.result if change.result is not None else agent


def _refuse(*, agent, action, actor, now, error, reason):
    with transaction.atomic():
        _record_event(
            agent=agent,
            action=action,
            actor=actor,
            outcome=AuditOutcome.REFUSED,
            now=now,
            state_before=agent.state if agent else "",
            state_after=agent.state if agent else "",
            reason=reason,
            refusal_reason=error.message,
        )
    error.state = error.state or (agent.state if agent else "")


def _refresh(target, source):
    for field in Agent._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))


def _require(agent, action):
    if agent.state not in ALLOWED_FROM[action]:
        message = REFUSAL_MESSAGES.get(
            (action, agent.state), f"Cannot {action} an agent that is {agent.state}"
        )
        raise TransitionRefused(message, state=agent.state)


def _save_state(agent, *fields):
    agent.save(update_fields=[*fields, "updated_at"])
    scheduling.sync_schedule(agent)


def control_refused(
    *, agent, action, actor: Actor, message, reason="", agent_slug=None, now=None
) -> AuditEvent:
    """Audit a control request an interface refused before it reached the state machine.

    For refusals the services cannot see themselves, such as a user without `runner.control_agent`
    forging a control POST, or an API body of the wrong shape: the attempt still leaves one
    `refused` event, and nothing else changes. `agent` may be None (an unknown slug, kept in
    `agent_slug`). What the request carried may be anything; PostgreSQL text cannot hold NUL.
    """
    now = now or timezone.now()
    slug_length = AuditEvent._meta.get_field("agent_slug").max_length

    def storable(text, limit=None):
        return text.replace("\x00", "")[:limit] if isinstance(text, str) else ""

    state = agent.state if agent is not None else ""
    with transaction.atomic():
        return _record_event(
            agent=agent,
            agent_slug=storable(agent_slug, slug_length) if agent_slug is not None else None,
            action=action,
            actor=actor,
            outcome=AuditOutcome.REFUSED,
            now=now,
            state_before=state,
            state_after=state,
            reason=storable(reason, REASON_MAX_LENGTH),
            refusal_reason=storable(message),
        )


# --- control transitions ------------------------------------------------------------------------


def agent_start(*, agent, actor: Actor, reason="", now=None):
    """stopped|error -> running; the first cycle is queued at once and the breaker is reset."""
    now = now or timezone.now()

    def apply(locked, change):
        _require(locked, AuditAction.START)
        locked.state = AgentState.RUNNING
        locked.consecutive_failures = 0
        locked.next_run = now
        locked.paused_next_run = None
        _save_state(locked, "state", "consecutive_failures", "next_run", "paused_next_run")
        scheduling.enqueue_scheduled_cycle(locked)

    return _control(
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
        _save_state(locked, "state", "next_run", "paused_next_run")
        CycleRun.objects.filter(agent=locked, status=RunStatus.RUNNING).update(
            cancel_requested=True
        )

    return _control(
        agent=agent, action=AuditAction.STOP, actor=actor, reason=reason, now=now, apply=apply
    )


def agent_pause(*, agent, actor: Actor, reason="", now=None):
    """running -> paused; no new cycles, an in-flight cycle finishes."""
    now = now or timezone.now()

    def apply(locked, change):
        _require(locked, AuditAction.PAUSE)
        locked.state = AgentState.PAUSED
        locked.paused_next_run = locked.next_run
        locked.next_run = None
        _save_state(locked, "state", "next_run", "paused_next_run")

    return _control(
        agent=agent, action=AuditAction.PAUSE, actor=actor, reason=reason, now=now, apply=apply
    )


def agent_resume(*, agent, actor: Actor, reason="", now=None):
    """paused -> running; keeps the paused slot if still ahead, else runs now (never a burst)."""
    now = now or timezone.now()

    def apply(locked, change):
        _require(locked, AuditAction.RESUME)
        held = locked.paused_next_run
        locked.state = AgentState.RUNNING
        locked.next_run = held if held is not None and held > now else now
        locked.paused_next_run = None
        _save_state(locked, "state", "next_run", "paused_next_run")
        if locked.next_run <= now:
            scheduling.enqueue_scheduled_cycle(locked)

    return _control(
        agent=agent, action=AuditAction.RESUME, actor=actor, reason=reason, now=now, apply=apply
    )


def agent_run_once(
    *, agent, actor: Actor, reason="", now=None, trigger=RunTrigger.MANUAL, enqueue=True
) -> CycleRun:
    """Queue one cycle in any state, refused while another cycle is in flight (overlap: skip).

    With `enqueue=False` the caller runs it itself (the CLI runs it in its own process).
    """
    now = now or timezone.now()

    def apply(locked, change):
        _reap_agent(locked, now)
        in_flight = (
            CycleRun.objects.filter(agent=locked, status__in=[RunStatus.RUNNING, RunStatus.QUEUED])
            .exclude(trigger=RunTrigger.SCHEDULE, status=RunStatus.QUEUED)
            .order_by("-id")
            .first()
        )
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
        )
        change.result = run
        if enqueue:
            scheduling.enqueue_queued_run(run.pk, timeout_seconds=locked.timeout_seconds)

    return _control(
        agent=agent, action=AuditAction.RUN_ONCE, actor=actor, reason=reason, now=now, apply=apply
    )


def _next_run_after_interval_change(agent, now):
    base = agent.last_run or now
    return max(base + timedelta(minutes=agent.interval_minutes), now)


def agent_set_interval(*, agent, interval_minutes, actor: Actor, reason="", now=None):
    """Any state; 1..10080 minutes; the next run is recomputed from the last start, never past."""
    now = now or timezone.now()
    try:
        minutes = parse_interval(interval_minutes)
    except InvalidInput as exc:
        _refuse(
            agent=agent,
            action=AuditAction.SET_INTERVAL,
            actor=actor,
            now=now,
            error=exc,
            reason=reason if isinstance(reason, str) else "",
        )
        raise

    def apply(locked, change):
        before = locked.interval_minutes
        locked.interval_minutes = minutes
        change.changes = {"interval_minutes": {"before": before, "after": minutes}}
        _apply_interval_to_schedule(locked, now)
        _save_state(locked, "interval_minutes", "next_run", "paused_next_run")

    return _control(
        agent=agent,
        action=AuditAction.SET_INTERVAL,
        actor=actor,
        reason=reason,
        now=now,
        apply=apply,
    )


def _apply_interval_to_schedule(agent, now):
    if agent.state == AgentState.RUNNING:
        agent.next_run = _next_run_after_interval_change(agent, now)
    elif agent.state == AgentState.PAUSED:
        agent.paused_next_run = _next_run_after_interval_change(agent, now)


# --- configuration ------------------------------------------------------------------------------


def _config_values(agent):
    return {name: getattr(agent, name) for name in Agent.CONFIG_FIELDS}


def _validation_to_input_error(exc: ValidationError):
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    field = next(iter(errors))
    message = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items())
    error = InvalidInput(message, field=field)
    error.errors = errors
    return error


def agent_create(*, values: dict, actor: Actor, reason="", now=None) -> Agent:
    """Create an agent from configuration values (validated like any edit) and audit it."""
    now = now or timezone.now()
    allowed = {"slug", *Agent.CONFIG_FIELDS}
    agent = Agent(**{k: v for k, v in values.items() if k in allowed})
    if not agent.name:
        agent.name = agent.slug
    try:
        agent.full_clean()
    except ValidationError as exc:
        error = _validation_to_input_error(exc)
        _refuse(agent=None, action=AuditAction.CREATE, actor=actor, now=now, error=error, reason="")
        raise error from exc
    with transaction.atomic():
        agent.save()
        _record_event(
            agent=agent,
            action=AuditAction.CREATE,
            actor=actor,
            outcome=AuditOutcome.APPLIED,
            now=now,
            state_after=agent.state,
            changes={k: {"before": None, "after": v} for k, v in _config_values(agent).items()},
            reason=parse_reason(reason),
        )
    return agent


def agent_update_config(*, agent, values: dict, actor: Actor, reason="", now=None) -> Agent:
    """Edit configuration fields only (never state), validated, audited with before/after."""
    now = now or timezone.now()
    unknown = set(values) - set(Agent.CONFIG_FIELDS)
    if unknown:
        error = InvalidInput(
            f"Not editable: {', '.join(sorted(unknown))}.", field=sorted(unknown)[0]
        )
        _refuse(
            agent=agent, action=AuditAction.CONFIGURE, actor=actor, now=now, error=error, reason=""
        )
        raise error

    def apply(locked, change):
        before = _config_values(locked)
        for name, value in values.items():
            setattr(locked, name, value)
        try:
            locked.full_clean(exclude=["slug"])
        except ValidationError as exc:
            raise _validation_to_input_error(exc) from exc
        after = _config_values(locked)
        change.changes = {
            name: {"before": before[name], "after": after[name]}
            for name in Agent.CONFIG_FIELDS
            if before[name] != after[name]
        }
        if "interval_minutes" in change.changes:
            _apply_interval_to_schedule(locked, now)
        _save_state(locked, *Agent.CONFIG_FIELDS, "next_run", "paused_next_run")

    return _control(
        agent=agent, action=AuditAction.CONFIGURE, actor=actor, reason=reason, now=now, apply=apply
    )


def agent_delete(*, agent, actor: Actor, reason="", now=None):
    """Delete an agent and its runs; refused while a cycle runs. The audit trail stays."""
    now = now or timezone.now()

    def apply(locked, change):
        _reap_agent(locked, now)
        if CycleRun.objects.filter(agent=locked, status=RunStatus.RUNNING).exists():
            raise TransitionRefused("A cycle is running; stop the agent first", state=locked.state)
        locked.state = AgentState.STOPPED
        locked.next_run = None
        scheduling.sync_schedule(locked)

    _control(
        agent=agent, action=AuditAction.DELETE, actor=actor, reason=reason, now=now, apply=apply
    )
    Agent.objects.filter(pk=agent.pk).delete()


# --- cycle lifecycle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    run: CycleRun
    token: int


class ClaimRefused(TransitionRefused):
    """A worker may not run this cycle (another is in flight, the agent is not running, ...)."""


def _lock_agent_for_claim(agent_id):
    """Lock the agent row without queueing behind other claims; retry briefly if it is held."""
    for _ in range(CLAIM_LOCK_ATTEMPTS):
        agent = Agent.objects.select_for_update(skip_locked=True).filter(pk=agent_id).first()
        if agent is not None:
            return agent
        if not Agent.objects.filter(pk=agent_id).exists():
            raise ClaimRefused(f"Agent {agent_id} does not exist")
        time.sleep(CLAIM_LOCK_PAUSE_SECONDS)
    raise ClaimRefused("The agent is locked by another claim")


def _begin_run(agent, run_values, *, now, worker, task_id, existing_run_id=None):
    """Mark a run `running` with a fresh fencing token and lease; returns a Claim."""
    Agent.objects.filter(pk=agent.pk).update(
        fencing_token=F("fencing_token") + 1, last_run=now, updated_at=now
    )
    token = Agent.objects.values_list("fencing_token", flat=True).get(pk=agent.pk)
    values = {
        "status": RunStatus.RUNNING,
        "started_at": now,
        "heartbeat_at": now,
        "lease_expires_at": now + lease_duration(),
        "deadline_at": now + timedelta(seconds=agent.timeout_seconds),
        "fencing_token": token,
        "worker": worker,
        "trading_mode": agent.effective_trading_mode,
        "config_snapshot": _config_values(agent),
        **run_values,
    }
    if task_id:
        values["task_id"] = task_id
    try:
        with transaction.atomic():
            if existing_run_id is not None:
                claimed = CycleRun.objects.filter(
                    pk=existing_run_id, status=RunStatus.QUEUED
                ).update(**values)
                if not claimed:
                    raise ClaimRefused(f"Run {existing_run_id} is no longer queued")
                run = CycleRun.objects.get(pk=existing_run_id)
            else:
                run = CycleRun.objects.create(agent=agent, queued_at=now, **values)
    except IntegrityError as exc:
        raise ClaimRefused("Another cycle of this agent is running or this slot has run") from exc
    return Claim(run=run, token=token)


def cycle_claim_queued(*, run_id, worker, task_id="", now=None) -> Claim:
    """Claim a queued (manual or CLI) run. Refused runs are marked `skipped` with the reason."""
    run = CycleRun.objects.filter(pk=run_id).only("agent_id", "status").first()
    if run is None:
        raise ClaimRefused(f"Run {run_id} does not exist")
    refusal = None
    with transaction.atomic():
        agent = _lock_agent_for_claim(run.agent_id)
        # "now" is read once the lock is held, so this run cannot start before the previous
        # one's recorded finish (the lock may have been waited for).
        now = now or timezone.now()
        _reap_agent(agent, now)
        if CycleRun.objects.filter(agent=agent, status=RunStatus.RUNNING).exists():
            refusal = ClaimRefused("Another cycle of this agent is in flight", state=agent.state)
            CycleRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
                status=RunStatus.SKIPPED, finished_at=now, error_message=refusal.message
            )
        else:
            claim = _begin_run(
                agent, {}, now=now, worker=worker, task_id=task_id, existing_run_id=run_id
            )
    if refusal is not None:
        raise refusal
    return claim


def cycle_claim_scheduled(*, agent_id, worker, task_id="", now=None, slot=None) -> Claim | None:
    """Claim the agent's due scheduled slot; None when nothing is due (a duplicate delivery).

    `slot` is the slot the task was sent for: a slot older than the agent's `next_run` was
    already run, skipped or folded, so its delivery is a no-op. Missed slots (the cluster was
    down) are folded into this one run and counted on it. A due slot that cannot run (agent
    paused, stopped, or a cycle still in flight) is recorded once as a `skipped` run with the
    reason, so every slot leaves one trace.
    """
    refusal = None
    with transaction.atomic():
        agent = _lock_agent_for_claim(agent_id)
        now = now or timezone.now()  # read under the lock, as in cycle_claim_queued
        _reap_agent(agent, now)
        if agent.state != AgentState.RUNNING:
            refusal = ClaimRefused(f"Agent is {agent.state}", state=agent.state)
            try:
                with transaction.atomic():
                    CycleRun.objects.create(
                        agent=agent,
                        trigger=RunTrigger.SCHEDULE,
                        slot=slot,
                        status=RunStatus.SKIPPED,
                        queued_at=now,
                        finished_at=now,
                        error_message=f"Scheduled cycle skipped: agent is {agent.state}",
                    )
            except IntegrityError:
                return None  # this slot was already recorded: a second delivery
        elif (
            agent.next_run is None
            or agent.next_run > now
            or (slot is not None and slot < agent.next_run)  # that slot was already handled
        ):
            return None
        elif CycleRun.objects.filter(
            agent=agent, status=RunStatus.RUNNING, cancel_requested=True
        ).exists():
            # A stopped cycle is still winding down (stop, then start at once): look again
            # shortly rather than skipping this slot and waiting a whole interval.
            agent.next_run = now + _winding_down_retry()
            agent.save(update_fields=["next_run", "updated_at"])
            scheduling.sync_schedule(agent)
            return None
        else:
            slot = agent.next_run
            interval = timedelta(minutes=agent.interval_minutes)
            missed = int((now - slot) / interval)
            agent.next_run = slot + (missed + 1) * interval
            agent.save(update_fields=["next_run", "updated_at"])
            scheduling.sync_schedule(agent)
            if CycleRun.objects.filter(agent=agent, status=RunStatus.RUNNING).exists():
                refusal = ClaimRefused("The previous cycle is still running", state=agent.state)
                CycleRun.objects.create(
                    agent=agent,
                    trigger=RunTrigger.SCHEDULE,
                    slot=slot,
                    missed_slots=missed,
                    status=RunStatus.SKIPPED,
                    queued_at=now,
                    finished_at=now,
                    error_message="Scheduled cycle skipped: the previous cycle is still running",
                )
            else:
                return _begin_run(
                    agent,
                    {"trigger": RunTrigger.SCHEDULE, "slot": slot, "missed_slots": missed},
                    now=now,
                    worker=worker,
                    task_id=task_id,
                )
    raise refusal


def _winding_down_retry():
    return timedelta(seconds=max(settings.RUNNER_LEASE_SECONDS / 3, 1))


def cycle_heartbeat(*, run_id, token, now=None):
    """Renew the lease. Returns (still_held, cancel_requested)."""
    now = now or timezone.now()
    held = CycleRun.objects.filter(pk=run_id, fencing_token=token, status=RunStatus.RUNNING).update(
        lease_expires_at=now + lease_duration(), heartbeat_at=now
    )
    if not held:
        return False, False
    cancel = CycleRun.objects.filter(pk=run_id).values_list("cancel_requested", flat=True).get()
    return True, cancel


def cycle_checkpoint(*, run_id, token, now=None):
    """Raise CycleStop if the cycle should end here: stop requested, deadline passed, lease lost."""
    now = now or timezone.now()
    row = (
        CycleRun.objects.filter(pk=run_id)
        .values("status", "fencing_token", "cancel_requested", "deadline_at")
        .first()
    )
    if row is None or row["status"] != RunStatus.RUNNING or row["fencing_token"] != token:
        raise LeaseLost("This worker no longer holds the run's lease")
    if row["cancel_requested"]:
        raise CycleCancelled("Stop was requested")
    if row["deadline_at"] is not None and now >= row["deadline_at"]:
        raise CycleDeadlineExceeded("The cycle passed its deadline (timeout_seconds)")


@dataclass
class Outcome:
    status: str
    summary: dict | None = None
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""
    log_lines: list | None = None
    trip: bool = False


def cycle_finish(*, run_id, token, outcome: Outcome, now=None) -> bool:
    """Write a run's result and the agent's counters; False (and no change) for a stale token."""
    now = now or timezone.now()
    with transaction.atomic():
        agent_id = CycleRun.objects.values_list("agent_id", flat=True).get(pk=run_id)
        agent = Agent.objects.select_for_update().get(pk=agent_id)
        return _settle_run(
            agent,
            CycleRun.objects.filter(pk=run_id, fencing_token=token, status=RunStatus.RUNNING),
            outcome,
            now=now,
        )


def _settle_run(agent, run_queryset, outcome: Outcome, *, now):
    """Finish the run(s) selected (still running) and update counters and the breaker."""
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

    agent.run_count += 1
    fields = ["run_count"]
    if outcome.status == RunStatus.SUCCEEDED:
        agent.success_count += 1
        agent.consecutive_failures = 0
        agent.last_success = now
        fields += ["success_count", "consecutive_failures", "last_success"]
    elif outcome.status in FAILURE_STATUSES:
        agent.error_count += 1
        agent.consecutive_failures += 1
        agent.last_error = f"{outcome.error_type}: {outcome.error_message}".strip(": ")
        fields += ["error_count", "consecutive_failures", "last_error"]
    agent.save(update_fields=[*fields, "updated_at"])

    should_trip = outcome.status in FAILURE_STATUSES and (
        outcome.trip or agent.consecutive_failures >= agent.max_consecutive_failures
    )
    if should_trip and agent.state == AgentState.RUNNING:
        _trip(agent, now=now, why=agent.last_error, load_failure=outcome.trip)
    return True


def _trip(agent, *, now, why, load_failure):
    before = agent.state
    agent.state = AgentState.ERROR
    agent.next_run = None
    agent.paused_next_run = None
    _save_state(agent, "state", "next_run", "paused_next_run")
    if load_failure:
        reason = f"The agent could not be loaded: {why}"
    else:
        reason = f"{agent.consecutive_failures} consecutive failed cycles; last: {why}"
    _record_event(
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


def _reap_agent(agent, now):
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
        qs = CycleRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, lease_expires_at__lt=now)
        settled = _settle_run(agent, qs, outcome, now=now)
        if settled:
            alerts.run_abandoned(
                agent=agent, run_id=run_id, worker=worker, status=outcome.status, now=now
            )
        reaped += settled
    _expire_stale_queued(now, agent=agent)
    return reaped


def _expire_stale_queued(now, agent=None):
    """A queued run no worker started in time (no cluster up) is skipped, so it never blocks
    later run-once requests; it counts as neither success nor failure."""
    ttl = settings.RUNNER_QUEUED_RUN_TTL_SECONDS
    stale = CycleRun.objects.filter(
        status=RunStatus.QUEUED, queued_at__lt=now - timedelta(seconds=ttl)
    )
    if agent is not None:
        stale = stale.filter(agent=agent)
    return stale.update(
        status=RunStatus.SKIPPED,
        finished_at=now,
        error_message=f"No worker started this run within {ttl} s (is a qcluster running?)",
    )


def runs_reap_expired(*, agent_id=None, now=None) -> int:
    """Mark every expired lease abandoned (the reaper task, and status reads). Returns the count."""
    now = now or timezone.now()
    candidates = CycleRun.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now)
    if agent_id is not None:
        candidates = candidates.filter(agent_id=agent_id)
    reaped = 0
    for candidate_agent_id in set(candidates.values_list("agent_id", flat=True)):
        with transaction.atomic():
            agent = (
                Agent.objects.select_for_update(skip_locked=True)
                .filter(pk=candidate_agent_id)
                .first()
            )
            if agent is not None:
                reaped += _reap_agent(agent, now)
    _expire_stale_queued(now)
    return reaped
