"""The forecaster's totals for the seed-compatible status (`total_forecasts`, `total_trades`).

Called by the runner's status endpoint through the RUNNER_STATUS_EXTRAS setting, so `runner`
never imports `agents`.
"""

from agents.models import Forecast, TradeDecision


def forecast_totals(agent) -> dict:
    """Successful forecasts made, and approved decisions that produced a paper fill."""
    return {
        "total_forecasts": Forecast.objects.filter(agent=agent, status=Forecast.Status.OK).count(),
        "total_trades": TradeDecision.objects.filter(
            agent=agent, approved=True, fill__isnull=False
        ).count(),
    }
