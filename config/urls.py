from django.contrib import admin
from django.urls import include, path

from runner.admin.live import version_view
from runner.admin.overview import overview_view
from runner.admin.reports import agent_report_view
from runner.admin.versions import agent_version_restore_view, agent_versions_view
from runner.api.reports import AgentReportView, AllAgentsReportView

urlpatterns = [
    # Reports (issue 7): ahead of the admin's catch-all and of any `api/` router include.
    path(
        "admin/runner/agent/<int:agent_id>/report/",
        admin.site.admin_view(agent_report_view),
        name="runner-agent-report",
    ),
    # Live operations (issue 16): the live pages' version polls and the overview of every agent.
    path("admin/runner/live/<str:scope>/", version_view, name="runner-live-version"),
    path("admin/runner/overview/", admin.site.admin_view(overview_view), name="runner-overview"),
    # Configuration versions (issue 15): the list, diffs and restore of an agent's versions.
    path(
        "admin/runner/agent/<int:agent_id>/versions/",
        admin.site.admin_view(agent_versions_view),
        name="runner-agent-versions",
    ),
    path(
        "admin/runner/agent/<int:agent_id>/versions/<int:number>/restore/",
        admin.site.admin_view(agent_version_restore_view),
        name="runner-agent-version-restore",
    ),
    path("api/agents/<slug:slug>/report/", AgentReportView.as_view(), name="api-agent-report"),
    path("api/reports/", AllAgentsReportView.as_view(), name="api-reports"),
    path("admin/", admin.site.urls),
    path("api/", include(("runner.api.urls", "api"))),
    path("api/", include("agents.urls")),
    path("", include("runner.ops_urls")),
]

# JSON (not HTML) error pages for /api/ paths no view handled.
handler400 = "runner.api.errors.bad_request"
handler404 = "runner.api.errors.not_found"
handler500 = "runner.api.errors.server_error"
