"""The admin's configuration versions page of an agent: the list, a diff between any two, and a
"Restore this version" button per version.

Wired in config/urls.py beside the report page and wrapped in `admin.site.admin_view` (a staff
login). Viewing needs `runner.view_agent`; restoring needs `runner.change_agent` and is one call
to `services.agent_restore_version` with an admin actor, so it is audited like any
configuration change; a restore POSTed without the permission is refused, audited, and 403.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from runner import services, versions
from runner.admin.agent_controls import admin_actor
from runner.admin.reports import _reverse_or_none
from runner.errors import RunnerError
from runner.models import Agent, AuditAction

LISTED = 200
CHANGE_PERMISSION = "runner.change_agent"


def _agent(request, agent_id) -> Agent:
    if not request.user.has_perm("runner.view_agent"):
        raise PermissionDenied
    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None:
        raise Http404(f"No agent with id {agent_id}")
    return agent


def _number(text):
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None


def agent_versions_view(request, agent_id):
    agent = _agent(request, agent_id)
    rows = versions.with_changes(list(versions.versions_of(agent)[:LISTED]), agent)
    first, second = _number(request.GET.get("a", "")), _number(request.GET.get("b", ""))
    context = {
        **admin.site.each_context(request),
        "opts": Agent._meta,
        "agent": agent,
        "title": f"Configuration versions: {agent.name} ({agent.slug})",
        "rows": rows,
        "numbers": [row["number"] for row in rows],
        "current": rows[0]["number"] if rows else None,
        "a": first,
        "b": second,
        "can_restore": request.user.has_perm(CHANGE_PERMISSION),
        "app_url": _reverse_or_none("admin:app_list", kwargs={"app_label": "runner"}),
        "changelist_url": _reverse_or_none("admin:runner_agent_changelist"),
        "change_url": _reverse_or_none("admin:runner_agent_change", args=[agent.pk]),
    }
    status = 200
    if first is not None and second is not None:
        try:
            context["diff"] = versions.version_diff(agent, first, second)
        except RunnerError as exc:
            context["error"], status = exc.message, 400
    return render(request, "admin/runner/agent_versions.html", context, status=status)


def agent_version_restore_view(request, agent_id, number):
    """POST only: restore version `number` through the service, then back to the versions page."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    agent = _agent(request, agent_id)
    reason = request.POST.get("reason", "").strip()
    if not request.user.has_perm(CHANGE_PERMISSION):
        services.control_refused(
            agent=agent,
            action=AuditAction.RESTORE,
            actor=admin_actor(request),
            message=f"Permission denied: {CHANGE_PERMISSION} is required.",
            reason=reason,
        )
        raise PermissionDenied
    try:
        services.agent_restore_version(
            agent=agent, number=number, actor=admin_actor(request), reason=reason
        )
    except RunnerError as exc:
        messages.error(request, f"Restore of version {number} refused: {exc.message}")
    else:
        newest = versions.versions_of(agent).values_list("number", flat=True).first()
        messages.success(
            request, f"Version {number} of {agent.slug} restored; it is now version {newest}."
        )
    return HttpResponseRedirect(reverse("runner-agent-versions", kwargs={"agent_id": agent.pk}))
