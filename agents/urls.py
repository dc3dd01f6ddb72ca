"""The forecaster's read-only API, included under `api/` by config/urls.py.

A SimpleRouter (no API root view) so this include never shadows the runner's own `api/` root.
"""

from rest_framework.routers import SimpleRouter

from agents.api import DecisionViewSet, ForecastViewSet

router = SimpleRouter()
router.register("forecasts", ForecastViewSet, basename="forecast")
router.register("decisions", DecisionViewSet, basename="decision")

urlpatterns = router.urls
