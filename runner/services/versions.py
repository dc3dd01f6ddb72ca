"""Writing configuration versions: one numbered version per applied configuration change.

Called by the audit frame (`audit.audited`) and by `agent_create`, in the transaction that
records the change's audit event and holding the agent's lock, so numbers never collide and a
version exists exactly when its event does. Which changes make a version: any that touches a
field of `Agent.CONFIG_FIELDS` (the edit form, the API, the interval control, a restore).
"""

from __future__ import annotations

from runner.models import Agent, AgentConfigVersion
from runner.versions import config_of


def is_configuration_change(changes) -> bool:
    return bool(changes) and not set(changes).isdisjoint(Agent.CONFIG_FIELDS)


def record_version(agent, event, *, restored_from=None) -> AgentConfigVersion:
    """The agent's next version: its configuration now, with who, when and why from `event`."""
    last = (
        AgentConfigVersion.objects.filter(agent_id=agent.pk)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    return AgentConfigVersion.objects.create(
        agent_id=agent.pk,
        number=(last or 0) + 1,
        config=config_of(agent),
        audit_event=event,
        action=event.action,
        actor_username=event.actor_username,
        source=event.source,
        reason=event.reason,
        restored_from=restored_from,
        created_at=event.created_at,
    )
