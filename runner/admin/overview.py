"""The overview: every agent on one admin page, the ones that need attention first.

Per agent: state, next run, the run in flight and for how long, its last outcomes as a strip
(oldest to newest), the success rate over them, failures in a row against its circuit breaker,
and why it needs attention (runner.attention). Three queries for the whole page, however many
agents and runs there are: the agents with their strip and running run (correlated subqueries
walking the (agent, queued_at) and (status, agent) indexes), the open alerts, the overdue agents.
The page is live (runner/admin/live.py, scope "overview").
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import OuterRef, Subquery, TextField
from django.db.models.expressions import RawSQL
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from runner import alerts, attention
from runner.admin.agent_list import RECENT_RUNS_FOR_RATE
from runner.admin.display import badge, moment_html
from runner.admin.live import elapsed_html, note_version
from runner.models import FINISHED_STATUSES, Agent, Alert, CycleRun, RunStatus


def _outcome_strip():
    """ "id:status,id:status,..." of the agent's latest finished runs, in the agents query."""
    statuses = list(FINISHED_STATUSES)
    placeholders = ", ".join(["%s"] * len(statuses))
    runs, agents = CycleRun._meta.db_table, Agent._meta.db_table
    joined = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    sql = (
        f"SELECT {joined}(recent.id || ':' || recent.status, ',') FROM ("
        f"SELECT r.id, r.status FROM {runs} r WHERE r.agent_id = {agents}.id "
        f"AND r.status IN ({placeholders}) ORDER BY r.queued_at DESC, r.id DESC LIMIT %s) recent"
    )
    return RawSQL(sql, [*statuses, RECENT_RUNS_FOR_RATE], output_field=TextField())


def _strip(joined) -> list[tuple[int, str]]:
    """(run id, status) pairs, oldest first."""
    pairs = []
    for item in (joined or "").split(","):
        run_id, _, status = item.partition(":")
        if run_id.isdigit():
            pairs.append((int(run_id), status))
    return sorted(pairs)


def strip_html(pairs):
    if not pairs:
        return "—"
    return format_html(
        '<span class="runner-strip">{}</span>',
        format_html_join(
            "",
            '<a class="runner-run-{}" href="{}" title="run #{}: {}"></a>',
            (
                (status, reverse("admin:runner_cyclerun_change", args=[run_id]), run_id, status)
                for run_id, status in pairs
            ),
        ),
    )


def _success(pairs) -> str:
    if not pairs:
        return "—"
    succeeded = sum(status == RunStatus.SUCCEEDED for _, status in pairs)
    return f"{round(100 * succeeded / len(pairs))}% ({succeeded}/{len(pairs)})"


def _row(agent, found, now) -> dict:
    pairs = _strip(agent.outcome_strip)
    in_flight = None
    if agent.running_run_id:
        in_flight = format_html(
            '<a href="{}">run #{}</a> · {}',
            reverse("admin:runner_cyclerun_change", args=[agent.running_run_id]),
            agent.running_run_id,
            elapsed_html(agent.running_since, now),
        )
    near = agent.consecutive_failures and (
        agent.consecutive_failures >= agent.max_consecutive_failures - 1
    )
    return {
        "agent": agent,
        "url": reverse("admin:runner_agent_change", args=[agent.pk]),
        "state": badge(agent.state, agent.get_state_display(), "state"),
        "concerns": found,
        "concerns_html": format_html_join(
            " ",
            '<span class="runner-badge runner-attention runner-attention-{}">{}</span>',
            ((concern.code, concern.label) for concern in found),
        )
        or "—",
        "next_run": moment_html(agent.next_run, now),
        "in_flight": in_flight or "—",
        "strip": strip_html(pairs),
        "success": _success(pairs),
        "failures": format_html(
            '<span class="{}">{} of {}</span>',
            "runner-breaker-near" if near else "",
            agent.consecutive_failures,
            agent.max_consecutive_failures,
        ),
    }


def overview_rows(now=None) -> list[dict]:
    """Every agent's row, those that need attention first (most urgent first), then by slug."""
    now = now or timezone.now()
    running = CycleRun.objects.filter(agent=OuterRef("pk"), status=RunStatus.RUNNING)
    agents = Agent.objects.annotate(
        outcome_strip=_outcome_strip(),
        running_run_id=Subquery(running.values("pk")[:1]),
        running_since=Subquery(running.values("started_at")[:1]),
    ).order_by("slug")
    open_alerts = defaultdict(set)
    for agent_id, kind in Alert.objects.filter(closed_at__isnull=True).values_list(
        "agent_id", "kind"
    ):
        open_alerts[agent_id].add(kind)
    overdue = {agent.pk for agent, _late in alerts.overdue_agents(now)}
    rows = []
    for agent in agents:
        found = attention.concerns(
            agent, overdue=agent.pk in overdue, open_alert_kinds=open_alerts[agent.pk]
        )
        rows.append(_row(agent, found, now))
    return sorted(rows, key=lambda row: attention.urgency(row["concerns"]))  # stable: slugs stay


def overview_view(request):
    """`/admin/runner/overview/` (needs runner.view_agent)."""
    if not request.user.has_perm("runner.view_agent"):
        raise PermissionDenied
    note_version(request, "overview")
    rows = overview_rows()
    context = {
        **admin.site.each_context(request),
        "title": "Overview of every agent",
        "rows": rows,
        "needing_attention": sum(bool(row["concerns"]) for row in rows),
        "strip_length": RECENT_RUNS_FOR_RATE,
    }
    return TemplateResponse(request, "admin/runner/overview.html", context)
