"""The project's URLs plus /bench/ping: a DRF view with the same authentication and nothing else."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as project_urlpatterns


class Ping(APIView):
    """Token-authenticated, IsAuthenticated, no database work beyond the token lookup."""

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [*project_urlpatterns, path("bench/ping", Ping.as_view())]
