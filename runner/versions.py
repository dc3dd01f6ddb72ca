"""Reads of configuration versions: the list, one version, and the diff between any two.

Versions are written by `runner.services.versions` (one per applied configuration change) and
restored by `runner.services.configuration.agent_restore_version`. Reads never write.
"""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder

from runner.errors import InvalidInput
from runner.models import Agent, AgentConfigVersion

_MISSING = object()


def config_of(agent) -> dict:
    """Every configuration field of the agent, as JSON would store it."""
    values = {name: getattr(agent, name) for name in Agent.CONFIG_FIELDS}
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def config_diff(before: dict, after: dict) -> list[dict]:
    """What changed from `before` to `after`, field by field; dict fields (parameters, budgets)
    key by key, as dotted paths: [{"field", "change", "before", "after"}], sorted by field."""
    changes: list[dict] = []
    _walk(before, after, "", changes)
    return sorted(changes, key=lambda change: change["field"])


def _walk(before, after, prefix, changes):
    for key in sorted({*before, *after}, key=str):
        old, new = before.get(key, _MISSING), after.get(key, _MISSING)
        path = f"{prefix}{key}"
        if isinstance(old, dict) and isinstance(new, dict):
            _walk(old, new, f"{path}.", changes)
        elif old is _MISSING:
            changes.append({"field": path, "change": "added", "before": None, "after": new})
        elif new is _MISSING:
            changes.append({"field": path, "change": "removed", "before": old, "after": None})
        elif old != new:
            changes.append({"field": path, "change": "changed", "before": old, "after": new})


def versions_of(agent):
    """The agent's versions, newest first."""
    return AgentConfigVersion.objects.filter(agent_id=agent.pk).order_by("-number")


def version_get(agent, number) -> AgentConfigVersion:
    """Version `number` of the agent; InvalidInput naming `version` when there is none."""
    found = (
        versions_of(agent).filter(number=number).first()
        if isinstance(number, int) and not isinstance(number, bool) and 0 < number < 2**31
        else None
    )
    if found is None:
        numbers = versions_of(agent).values_list("number", flat=True)
        known = f"1..{numbers[0]}" if numbers else "none yet"
        raise InvalidInput(
            f"Agent {agent.slug} has no configuration version {number!r} (its versions: {known}).",
            field="version",
        )
    return found


def current_version_id(agent_id) -> int | None:
    return (
        AgentConfigVersion.objects.filter(agent_id=agent_id)
        .order_by("-number")
        .values_list("pk", flat=True)
        .first()
    )


def version_diff(agent, first: int, second: int) -> dict:
    """The diff from version `first` to version `second` (either order)."""
    older, newer = version_get(agent, first), version_get(agent, second)
    return {
        "agent": agent.slug,
        "from_version": older.number,
        "to_version": newer.number,
        "changes": config_diff(older.config, newer.config),
    }


def with_changes(versions: list[AgentConfigVersion], agent) -> list[dict]:
    """Each version (newest first) as a dict with its changes against the version before it."""
    if not versions:
        return []
    oldest = versions[-1].number
    before = versions_of(agent).filter(number__lt=oldest).values_list("config", flat=True).first()
    rows = []
    for index, version in enumerate(versions):
        previous = versions[index + 1].config if index + 1 < len(versions) else before
        rows.append(
            {
                **version_as_dict(version),
                "changes": config_diff(previous or {}, version.config),
            }
        )
    return rows


def version_as_dict(version: AgentConfigVersion) -> dict:
    return {
        "number": version.number,
        "created_at": version.created_at,
        "action": version.action,
        "actor": version.actor_username,
        "source": version.source,
        "reason": version.reason,
        "restored_from": version.restored_from,
        "audit_event": version.audit_event_id,
        "config": version.config,
    }
