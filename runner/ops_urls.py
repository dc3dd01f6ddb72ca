"""URLs of the operational endpoints (included at the site root by config/urls.py)."""

from django.urls import path

from runner import ops_views

urlpatterns = [
    path("livez", ops_views.livez, name="livez"),
    path("healthz", ops_views.healthz, name="healthz"),
    path("metrics", ops_views.metrics_view, name="metrics"),
]
