import factory
from django.utils import timezone

from agents.models import (
    Forecast,
    MarketObservation,
    PaperAccount,
    PaperFill,
    PaperPosition,
    TradeDecision,
)
from tests.factories import AgentFactory, CycleRunFactory


class ForecasterAgentFactory(AgentFactory):
    kind = "forecaster"


class MarketObservationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MarketObservation

    run = factory.SubFactory(CycleRunFactory, agent=factory.SubFactory(ForecasterAgentFactory))
    agent = factory.LazyAttribute(lambda o: o.run.agent)
    source = "snapshot"
    is_sample = True
    captured_at = factory.LazyFunction(timezone.now)
    market_id = factory.Sequence(lambda n: str(800000 + n))
    question = factory.LazyAttribute(lambda o: f"[SAMPLE] test market {o.market_id}")
    yes_price = 0.4
    no_price = 0.6
    liquidity = 5000.0
    tradeable = True


class ForecastFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Forecast

    market = factory.SubFactory(MarketObservationFactory)
    run = factory.LazyAttribute(lambda o: o.market.run)
    agent = factory.LazyAttribute(lambda o: o.market.agent)
    forecaster = "baseline"
    status = Forecast.Status.OK
    probability = factory.LazyAttribute(lambda o: o.market.yes_price)
    confidence = 0.0
    market_price = factory.LazyAttribute(lambda o: o.market.yes_price)
    created_at = factory.LazyFunction(timezone.now)


class TradeDecisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TradeDecision

    forecast = factory.SubFactory(ForecastFactory)
    run = factory.LazyAttribute(lambda o: o.forecast.run)
    agent = factory.LazyAttribute(lambda o: o.forecast.agent)
    market = factory.LazyAttribute(lambda o: o.forecast.market)
    approved = False
    side = ""
    edge = 0.0
    kelly = 0.0
    size = 0.0
    price = 0.4
    reason = "no edge: the forecast equals the price"
    created_at = factory.LazyFunction(timezone.now)


class PaperFillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaperFill

    decision = factory.SubFactory(
        TradeDecisionFactory, approved=True, side="yes", edge=0.2, kelly=0.3, size=100.0
    )
    run = factory.LazyAttribute(lambda o: o.decision.run)
    agent = factory.LazyAttribute(lambda o: o.decision.agent)
    market_id = factory.LazyAttribute(lambda o: o.decision.market.market_id)
    side = "yes"
    price = 0.4
    shares = 250.0
    cost = 100.0
    created_at = factory.LazyFunction(timezone.now)


class PaperAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaperAccount

    agent = factory.SubFactory(ForecasterAgentFactory)
    initial_balance = 10_000.0
    cash = factory.LazyAttribute(lambda o: o.initial_balance)
    updated_at = factory.LazyFunction(timezone.now)


class PaperPositionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaperPosition

    agent = factory.SubFactory(ForecasterAgentFactory)
    market_id = factory.Sequence(lambda n: f"sample-{n}")
    question = "[SAMPLE] Will the test pass?"
    is_sample = True
    side = "yes"
    shares = 250.0
    cost = 100.0
    updated_at = factory.LazyFunction(timezone.now)
