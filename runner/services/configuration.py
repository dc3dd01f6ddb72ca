"""Configuration changes: create, edit and delete agents, validated and audited with before/after."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from runner import scheduling
from runner.actors import Actor
from runner.errors import InvalidInput, TransitionRefused
from runner.models import Agent, AgentState, AuditAction, AuditOutcome, CycleRun, RunStatus
from runner.services.audit import audited, checked, record_event, refuse
from runner.services.control import retime
from runner.services.state import save_state
from runner.services.versions import record_version
from runner.validation import parse_reason
from runner.versions import version_get

# Configuration fields that move the agent's next slot when they change.
RETIMING_FIELDS = {
    "interval_minutes",
    "schedule_kind",
    "cron",
    "timezone",
    "active_windows",
}


def config_values(agent) -> dict:
    return {name: getattr(agent, name) for name in Agent.CONFIG_FIELDS}


def _input_error(exc: ValidationError) -> InvalidInput:
    """A model ValidationError as the runner's InvalidInput, keeping every field's messages."""
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
        error = _input_error(exc)
        refuse(
            agent=None,
            agent_slug=agent.slug,
            action=AuditAction.CREATE,
            actor=actor,
            now=now,
            error=error,
            reason="",
        )
        raise error from exc
    with transaction.atomic():
        agent.save()
        event = record_event(
            agent=agent,
            action=AuditAction.CREATE,
            actor=actor,
            outcome=AuditOutcome.APPLIED,
            now=now,
            state_after=agent.state,
            changes={k: {"before": None, "after": v} for k, v in config_values(agent).items()},
            reason=parse_reason(reason),
        )
        record_version(agent, event)
    return agent


def agent_update_config(*, agent, values: dict, actor: Actor, reason="", now=None) -> Agent:
    """Edit configuration fields only (never state), validated, audited with before/after.

    An edit that changes nothing saves nothing and writes no event, unless it came with a
    reason: then the reason is kept in an applied event with no changes.
    """
    now = now or timezone.now()
    unknown = set(values) - set(Agent.CONFIG_FIELDS)
    if unknown:
        error = InvalidInput(
            f"Not editable: {', '.join(sorted(unknown))}.", field=sorted(unknown)[0]
        )
        refuse(
            agent=agent, action=AuditAction.CONFIGURE, actor=actor, now=now, error=error, reason=""
        )
        raise error

    def apply(locked, change):
        if not apply_config(locked, values, change, now=now):
            change.record = bool(reason)

    return audited(
        agent=agent, action=AuditAction.CONFIGURE, actor=actor, reason=reason, now=now, apply=apply
    )


def apply_config(locked, values: dict, change, *, now) -> bool:
    """Set configuration values on the locked agent, validate the whole configuration, note
    before/after in `change` and save; False (and nothing saved) when nothing changed."""
    before = config_values(locked)
    for name, value in values.items():
        setattr(locked, name, value)
    try:
        locked.full_clean(exclude=["slug"])
    except ValidationError as exc:
        raise _input_error(exc) from exc
    after = config_values(locked)
    change.changes = {
        name: {"before": before[name], "after": after[name]}
        for name in Agent.CONFIG_FIELDS
        if before[name] != after[name]
    }
    if not change.changes:
        return False
    if RETIMING_FIELDS & set(change.changes):
        retime(locked, now)
    save_state(locked, *Agent.CONFIG_FIELDS, "next_run", "paused_next_run")
    return True


def agent_restore_version(*, agent, number, actor: Actor, reason="", now=None) -> Agent:
    """Make configuration version `number` the agent's configuration again: one configuration
    change (audited as `restore_version`, and so the next version), validated like any edit.

    Refused, and audited, when the version does not exist, when the current environment forbids
    what it holds (`live` while TRADING_MODE=dry_run, an unknown kind, a parameter or budget now
    out of range), or when it equals the configuration now. Fields the version does not know
    (added since) keep their current values.
    """
    now = now or timezone.now()
    version = checked(
        lambda: version_get(agent, number),
        agent=agent,
        action=AuditAction.RESTORE,
        actor=actor,
        now=now,
        reason=reason,
    )
    values = {name: value for name, value in version.config.items() if name in Agent.CONFIG_FIELDS}

    def apply(locked, change):
        if not apply_config(locked, values, change, now=now):
            raise TransitionRefused(
                f"The configuration already equals version {version.number}; nothing to restore",
                state=locked.state,
            )
        change.restored_from = version.number

    return audited(
        agent=agent, action=AuditAction.RESTORE, actor=actor, reason=reason, now=now, apply=apply
    )


def agent_delete(*, agent, actor: Actor, reason="", now=None):
    """Delete an agent and its runs; refused while a cycle runs. The audit trail stays."""
    now = now or timezone.now()

    def apply(locked, change):
        running = CycleRun.objects.filter(
            agent=locked, status=RunStatus.RUNNING, lease_expires_at__gte=now
        )
        if running.exists():
            raise TransitionRefused("A cycle is running; stop the agent first", state=locked.state)
        locked.state = AgentState.STOPPED
        locked.next_run = None
        scheduling.sync_schedule(locked)

    audited(
        agent=agent, action=AuditAction.DELETE, actor=actor, reason=reason, now=now, apply=apply
    )
    Agent.objects.filter(pk=agent.pk).delete()
