"""The audit trail's one writer, and the lock-check-apply-record frame of every control request.

Every control or configuration request writes one `AuditEvent`, applied or refused, in the same
transaction as its effect. A refused request commits its `refused` event and then raises the
`RunnerError`, so refusals are audited but change nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from runner.actors import Actor
from runner.errors import AgentNotFound, InvalidInput, RunnerError
from runner.models import Agent, AuditEvent, AuditOutcome, CycleRun
from runner.services.state import copy_agent
from runner.services.versions import is_configuration_change, record_version
from runner.validation import REASON_MAX_LENGTH, parse_reason, without_lone_surrogates


def storable(text, limit=None):
    """Text as a database column can hold it: no NUL, no lone surrogate, at most `limit` long.

    Services validate what they record; this is the last guard for text that came from anywhere
    (an error message quoting the input, a slug from a URL, a command-line argument).
    """
    if not isinstance(text, str):
        return ""
    return without_lone_surrogates(text.replace("\x00", ""))[:limit]


def record_event(
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
    if agent_slug is None:
        agent_slug = agent.slug if agent is not None else ""
    return AuditEvent.objects.create(
        agent_id=agent.pk if agent is not None else None,
        agent_slug=storable(agent_slug, AuditEvent._meta.get_field("agent_slug").max_length),
        action=action,
        outcome=outcome,
        refusal_reason=storable(refusal_reason),
        actor=actor.user if actor.user is not None and actor.user.pk else None,
        actor_username=storable(actor.username),
        source=actor.source,
        state_before=state_before,
        state_after=state_after,
        changes=changes or {},
        reason=storable(reason),
        client_ip=actor.client_ip or None,
        request_id=actor.request_id,
        created_at=now,
    )


@dataclass
class Change:
    """What an applied request did: filled in by its `apply`, read by the recorder."""

    result: object = None
    changes: dict | None = None
    record: bool = True  # False: the request changed nothing and needs no event
    restored_from: int | None = None  # the configuration version a restore brought back


def lock_agent(agent) -> Agent:
    """Lock the agent's row for this transaction and read it: `agent` is an Agent, or a slug
    (found and locked in one query; AgentNotFound when no agent has it)."""
    rows = Agent.objects.select_for_update()
    if not isinstance(agent, str):
        return rows.get(pk=agent.pk)
    locked = rows.filter(slug=agent).first()
    if locked is None:
        raise AgentNotFound(f"No agent with slug {agent!r}")
    return locked


def audited(*, agent, action, actor: Actor, reason, now, apply):
    """Lock the agent, apply one request and record its event; refusals are recorded, then raised.

    `agent` is an Agent, or its slug (then the lock is the only read of it). `apply(locked_agent,
    change)` checks the request and writes its effect; it raises a RunnerError before writing
    anything when it refuses, and may set `change.record = False` when it had nothing to do.
    Returns `change.result`, else the agent (the caller's instance, brought up to date).
    """
    now = now or timezone.now()
    refusal = None
    with transaction.atomic():
        locked = lock_agent(agent)
        before = locked.state
        change = Change()
        checked_reason = ""
        try:
            checked_reason = parse_reason(reason)
            apply(locked, change)
        except RunnerError as exc:
            exc.state = exc.state or before
            refusal = exc
            _record_refusal(
                agent=locked,
                action=action,
                actor=actor,
                now=now,
                reason=checked_reason,
                message=exc.message,
            )
        if refusal is None and change.record:
            event = record_event(
                agent=locked,
                action=action,
                actor=actor,
                outcome=AuditOutcome.APPLIED,
                now=now,
                state_before=before,
                state_after=locked.state,
                changes=change.changes,
                reason=checked_reason,
            )
            if is_configuration_change(change.changes):
                record_version(locked, event, restored_from=change.restored_from)
            if isinstance(change.result, CycleRun):
                CycleRun.objects.filter(pk=change.result.pk).update(control_event=event)
                change.result.control_event = event
    if refusal is not None:
        raise refusal
    if isinstance(agent, str):
        return change.result if change.result is not None else locked
    copy_agent(agent, locked)
    return change.result if change.result is not None else agent


def refuse(*, agent, action, actor, now, error: RunnerError, reason, agent_slug=None):
    """Record a request refused before it reached the agent's lock (its input was bad)."""
    with transaction.atomic():
        _record_refusal(
            agent=agent,
            agent_slug=agent_slug,
            action=action,
            actor=actor,
            now=now,
            reason=reason,
            message=error.message,
        )
    error.state = error.state or (agent.state if agent else "")


def checked(parse, *, agent, action, actor, now, reason):
    """`parse()` a request's input; bad input (InvalidInput) is audited as refused, then raised."""
    try:
        return parse()
    except InvalidInput as exc:
        refuse(
            agent=agent,
            action=action,
            actor=actor,
            now=now,
            error=exc,
            reason=reason if isinstance(reason, str) else "",
        )
        raise


def control_refused(
    *, agent, action, actor: Actor, message, reason="", agent_slug=None, now=None
) -> AuditEvent:
    """Audit a request an interface refused before it reached the services.

    For refusals the services cannot see themselves, such as a user without `runner.control_agent`
    forging a control POST, or an API body of the wrong shape: the attempt still leaves one
    `refused` event, and nothing else changes. `agent` may be None (an unknown slug, kept in
    `agent_slug`). What the request carried may be anything: `record_event` makes it storable.
    """
    with transaction.atomic():
        return _record_refusal(
            agent=agent,
            agent_slug=agent_slug,
            action=action,
            actor=actor,
            now=now or timezone.now(),
            reason=storable(reason, REASON_MAX_LENGTH),
            message=message,
        )


def _record_refusal(*, agent, action, actor, now, reason, message, agent_slug=None, state=None):
    """A `refused` event: the agent's state stays what it was."""
    if state is None:
        state = agent.state if agent is not None else ""
    return record_event(
        agent=agent,
        agent_slug=agent_slug,
        action=action,
        actor=actor,
        outcome=AuditOutcome.REFUSED,
        now=now,
        state_before=state,
        state_after=state,
        reason=reason,
        refusal_reason=message,
    )
