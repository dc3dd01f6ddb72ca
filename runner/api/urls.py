"""URLs of the runner API, mounted at /api/ by config/urls.py."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from runner.api import live, records, seed, versions, views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False  # one URL per resource; JSON is the only format
router.register("agents", views.AgentViewSet, basename="agent")
router.register("runs", records.CycleRunViewSet, basename="run")
router.register("events", records.AuditEventViewSet, basename="event")

# The seed's paths, exactly: no trailing slash.
seed_urlpatterns = [
    path("agent/status", seed.SeedStatusView.as_view(), name="seed-status"),
    path("agent/start", seed.SeedStartView.as_view(), name="seed-start"),
    path("agent/stop", seed.SeedStopView.as_view(), name="seed-stop"),
    path("agent/pause", seed.SeedPauseView.as_view(), name="seed-pause"),
    path("agent/resume", seed.SeedResumeView.as_view(), name="seed-resume"),
    path("agent/run-once", seed.SeedRunOnceView.as_view(), name="seed-run-once"),
    path("agent/interval", seed.SeedIntervalView.as_view(), name="seed-interval"),
]

# Configuration versions of an agent (the slug matches as the agent resource's does).
AGENT = r"^agents/(?P<slug>[^/\x00]+)/versions/"
versions_urlpatterns = [
    re_path(AGENT + r"$", versions.AgentVersionsView.as_view(), name="agent-versions"),
    re_path(AGENT + r"diff/$", versions.AgentVersionDiffView.as_view(), name="agent-version-diff"),
    re_path(
        AGENT + r"(?P<number>[0-9]{1,10})/$",
        versions.AgentVersionView.as_view(),
        name="agent-version",
    ),
    re_path(
        AGENT + r"(?P<number>[0-9]{1,10})/restore/$",
        versions.AgentVersionRestoreView.as_view(),
        name="agent-version-restore",
    ),
]

urlpatterns = [
    path("runs/<int:id>/log/", live.RunLogView.as_view(), name="run-log"),
    *router.urls,
    *versions_urlpatterns,
    *seed_urlpatterns,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
