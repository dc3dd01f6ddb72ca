import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from agents.models import Forecast
from agents.status import forecast_totals
from tests.agents.factories import (
    ForecasterAgentFactory,
    ForecastFactory,
    MarketObservationFactory,
    PaperFillFactory,
    TradeDecisionFactory,
)

pytestmark = pytest.mark.django_db


def test_status_extra_is_registered_in_settings():
    assert "agents.status.forecast_totals" in settings.RUNNER_STATUS_EXTRAS
    assert import_string("agents.status.forecast_totals") is forecast_totals


def test_totals_count_ok_forecasts_and_filled_approved_decisions_of_that_agent_only():
    agent = ForecasterAgentFactory()
    market = MarketObservationFactory(agent=agent, run__agent=agent)
    ForecastFactory(market=market)
    ForecastFactory(market=market, status=Forecast.Status.FAILED, probability=None, error="bad")
    TradeDecisionFactory(forecast=ForecastFactory(market=market))  # rejected: not a trade
    PaperFillFactory(decision__forecast__market=market)
    PaperFillFactory()  # another agent's trade
    assert forecast_totals(agent) == {"total_forecasts": 3, "total_trades": 1}
    assert forecast_totals(ForecasterAgentFactory()) == {"total_forecasts": 0, "total_trades": 0}
