"""A URLconf with a stand-in report page, to check the agent page links to it once it exists."""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import path

urlpatterns = [
    path(
        "admin/runner/agent/<int:agent_id>/report/",
        lambda request, agent_id: HttpResponse("report"),
        name="runner-agent-report",
    ),
    path("admin/", admin.site.urls),
]
