"""The admin's per-agent report page (and its CSV download), drawn from `runner.reports`.

Wired in config/urls.py ahead of the admin's own URLs and wrapped in `admin.site.admin_view`,
so it needs a staff login like every admin page, plus `runner.view_agent`.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from runner import reports
from runner.errors import InvalidInput
from runner.models import Agent
from runner.reports.charts import buckets_chart, reliability_chart, status_chart
from runner.reports.formats import readable_outputs, report_csv

# Outputs of the scorekeeping hook (agents.scoring) that the page shows as tables and a chart.
SCORE_TABLES = ("forecast_scores", "forecast_calibration", "resolved_paper_pnl")


def _reverse_or_none(name, **kwargs):
    """Admin links, when the agent admin is registered (it lives in runner/admin.py)."""
    try:
        return reverse(name, **kwargs)
    except NoReverseMatch:
        return None


def agent_report_view(request, agent_id):
    if not request.user.has_perm("runner.view_agent"):
        raise PermissionDenied
    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None:
        raise Http404(f"No agent with id {agent_id}")
    params = {key: request.GET.get(key, "") for key in ("since", "until", "bucket")}
    context = {
        **admin.site.each_context(request),
        "opts": Agent._meta,
        "agent": agent,
        "title": f"Report: {agent.name} ({agent.slug})",
        "params": params,
        "buckets": list(reports.BUCKETS),
        "app_url": _reverse_or_none("admin:app_list", kwargs={"app_label": "runner"}),
        "changelist_url": _reverse_or_none("admin:runner_agent_changelist"),
        "change_url": _reverse_or_none("admin:runner_agent_change", args=[agent.pk]),
    }
    try:
        report = reports.run_report_from_params(agent=agent, **params)
    except InvalidInput as exc:
        context["error"] = exc.message
        return render(request, "admin/runner/agent_report.html", context, status=400)
    if request.GET.get("format") == "csv":
        response = HttpResponse(report_csv(report), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="report-{agent.slug}.csv"'
        return response
    csv_query = request.GET.copy()
    csv_query["format"] = "csv"
    context.update(
        report=report,
        csv_url=f"{request.path}?{csv_query.urlencode()}",
        buckets_svg=buckets_chart(report["buckets"], bucket_name=report["window"]["bucket"]),
        status_svg=status_chart(report["runs"]["by_status"]),
        output_rows=readable_outputs(
            {k: v for k, v in report["outputs"].items() if k not in SCORE_TABLES}
        ),
        reliability_svg=(
            reliability_chart(report["outputs"]["forecast_calibration"])
            if report["outputs"].get("forecast_calibration")
            else None
        ),
        success_percent=(
            None
            if report["runs"]["success_rate"] is None
            else round(report["runs"]["success_rate"] * 100, 1)
        ),
    )
    return render(request, "admin/runner/agent_report.html", context)
