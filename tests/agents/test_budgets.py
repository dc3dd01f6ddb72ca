"""The forecaster under budgets: it stops asking the LLM and stops opening positions before a
budget would be crossed, its usage hook (agents.budgets) reports what it spent, and the runner's
gate pauses it when a budget is spent (fake LLM server: it counts the calls)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.budgets import budget_usage
from agents.models import Forecast, MarketResolution, PaperPosition, TradeDecision
from runner import execution, selectors, services
from runner.actors import Actor
from runner.budgets import budget_day
from runner.models import Alert, AuditEvent, BudgetBreach
from tests.agents.factories import (
    ForecasterAgentFactory,
    MarketObservationFactory,
    PaperFillFactory,
    PaperPositionFactory,
)
from tests.factories import CycleRunFactory
from tests.support.fake_http import chat_reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("midday_zone")]

LLM = {"forecaster": "llm", "source": "snapshot", "markets_per_cycle": 10}


@pytest.fixture
def llm(fake_server, settings):
    """A fake OpenAI-compatible endpoint: every answer says 0.99 and costs 150 tokens."""
    answer = json.dumps({"probability": 0.99, "confidence": 0.9, "reasoning": "test answer"})
    server = fake_server(lambda request: chat_reply(answer))
    settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_API_KEY = server.url, "fake", ""
    return server


def manual_cycle(agent):
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), trigger="cli", enqueue=False)
    return execution.run_queued(queued.pk)


def calls(server):
    return sum(1 for request in server.requests if request.path.endswith("/chat/completions"))


def test_the_llm_is_not_asked_past_the_token_budget(llm):
    agent = ForecasterAgentFactory(parameters=LLM, budgets={"llm_tokens_per_day": 400})
    run = manual_cycle(agent)
    # 150 tokens a call: after two calls 100 are left, less than the next call would take.
    assert calls(llm) == 2
    assert run.status == "succeeded"
    assert run.summary["budget_stopped"] == ["llm_tokens_per_day"]
    assert run.summary["markets_analysed"] == run.summary["forecasts"] == 2
    assert "budget llm_tokens_per_day would be crossed by the next LLM call; 8 market(s)" in (
        "\n".join(run.log_lines)
    )
    [line] = selectors.agent_status(agent)["budgets"]
    assert (line["used"], line["left"], line["exhausted"]) == (300, 100, True)

    services.agent_start(agent=agent, actor=Actor.cli())
    with pytest.raises(services.BudgetExhausted) as refused:
        execution.run_scheduled(agent.pk)
    assert calls(llm) == 2  # the next cycle never reached the LLM
    assert "limit 400 tokens, used 300 tokens; the next LLM call (about 150 tokens)" in (
        refused.value.message
    )
    agent.refresh_from_db()
    assert agent.state == "paused"
    assert AuditEvent.objects.filter(agent=agent, action="pause", source="system").count() == 1
    assert BudgetBreach.objects.get().budget == "llm_tokens_per_day"


def test_the_llm_is_not_asked_past_the_cost_budget(llm, settings):
    settings.RUNNER_LLM_PRICES = {"fake": {"prompt": 1.0, "completion": 2.0}}
    # A call: 120 prompt + 30 completion tokens = 0.12 + 0.06 = 0.18 USD.
    agent = ForecasterAgentFactory(
        parameters=LLM, budgets={"llm_cost_per_day": 0.5, "llm_model": "fake"}
    )
    run = manual_cycle(agent)
    assert calls(llm) == 2  # 0.14 USD left; the next call is estimated at 150 tokens x 2 = 0.30
    assert run.summary["budget_stopped"] == ["llm_cost_per_day"]
    [line] = selectors.agent_status(agent)["budgets"]
    assert line["used"] == pytest.approx(0.36) and line["exhausted"]
    with pytest.raises(services.BudgetExhausted):
        manual_cycle(agent)
    assert calls(llm) == 2


def test_positions_stop_at_the_paper_exposure_budget(llm):
    agent = ForecasterAgentFactory(parameters=LLM, budgets={"paper_exposure": 600})
    run = manual_cycle(agent)
    assert run.status == "succeeded"
    # Each position is capped at 5% of 10,000 = 500: one of 500, one of the 100 left, no more.
    sizes = sorted(
        TradeDecision.objects.filter(run=run, approved=True).values_list("size", flat=True)
    )
    assert sizes == [100.0, 500.0]
    assert run.summary["paper_exposure"] == 600.0
    assert run.summary["budget_stopped"] == ["paper_exposure"]
    # The other 8 forecasts were refused: two for too small an edge, six by the budget.
    refusals = TradeDecision.objects.filter(run=run, approved=False)
    budget_refusals = refusals.filter(reason="paper_exposure budget leaves no room: 0.00 USD")
    assert (refusals.count(), budget_refusals.count()) == (8, 6)
    assert (
        refusals.exclude(pk__in=budget_refusals).filter(reason__startswith="edge below").count()
        == 2
    )
    assert "limited by paper_exposure budget" in (
        TradeDecision.objects.get(run=run, size=100.0).reason
    )
    with pytest.raises(services.BudgetExhausted) as refused:
        manual_cycle(agent)
    assert "paper_exposure: limit 600.00 USD, used 600.00 USD" in refused.value.message


def held(agent, market_id, *, side, shares, cost, price, at):
    """A paper position bought at `at` (its fill and the observation it was priced from)."""
    run = CycleRunFactory(agent=agent, queued_at=at)
    observation = MarketObservationFactory(
        run=run, agent=agent, market_id=market_id, yes_price=price, captured_at=at
    )
    PaperFillFactory(
        run=run,
        agent=agent,
        decision__forecast__market=observation,
        market_id=market_id,
        side=side,
        shares=shares,
        cost=cost,
        price=price if side == "yes" else 1 - price,
        created_at=at,
    )
    PaperPositionFactory(agent=agent, market_id=market_id, side=side, shares=shares, cost=cost)


def seen(agent, market_id, price, at):
    MarketObservationFactory(
        run=CycleRunFactory(agent=agent, queued_at=at),
        agent=agent,
        market_id=market_id,
        yes_price=price,
        captured_at=at,
    )


def test_the_days_paper_loss_marks_positions_at_the_latest_observed_price(midday_zone):
    agent = ForecasterAgentFactory()
    now = timezone.now()
    since, _end = budget_day(now, midday_zone)
    # Held since yesterday at 0.50, seen at 0.30 today: 200 shares lost 0.20 each.
    held(agent, "m1", side="yes", shares=200, cost=100, price=0.5, at=since - timedelta(hours=1))
    seen(agent, "m1", 0.3, now - timedelta(minutes=30))
    # Bought today at a NO price of 0.40 (YES 0.60); YES went to 0.70: 100 NO shares lost 0.10.
    held(agent, "m2", side="no", shares=100, cost=40, price=0.6, at=now - timedelta(hours=2))
    seen(agent, "m2", 0.7, now - timedelta(minutes=10))
    # Bought today and not moved since: a fill at the market price is no loss.
    held(agent, "m3", side="yes", shares=50, cost=10, price=0.2, at=now - timedelta(hours=1))

    usage = budget_usage(agent, since, now, {"paper_loss", "paper_exposure"})
    assert usage == {"paper_loss": pytest.approx(50.0), "paper_exposure": 150.0}

    agent.budgets = {"paper_loss_per_day": 40}
    agent.save()
    with pytest.raises(services.BudgetExhausted) as refused:
        manual_cycle(agent)
    assert "paper_loss_per_day: limit 40.00 USD, used 50.00 USD" in refused.value.message


def test_a_resolved_market_is_marked_at_its_final_price(midday_zone):
    agent = ForecasterAgentFactory()
    now = timezone.now()
    since, _end = budget_day(now, midday_zone)
    held(agent, "m1", side="yes", shares=100, cost=40, price=0.4, at=since - timedelta(hours=3))
    MarketResolution.objects.create(
        source="snapshot",
        market_id="m1",
        is_sample=True,
        yes_price=0.0,
        outcome="No",
        resolved_at=now - timedelta(hours=1),
        recorded_at=now,
    )
    assert budget_usage(agent, since, now, {"paper_loss"}) == {"paper_loss": 40.0}


def test_tokens_are_counted_per_model_for_the_day_only(midday_zone):
    agent = ForecasterAgentFactory()
    now = timezone.now()
    since, _end = budget_day(now, midday_zone)
    market = MarketObservationFactory(run=CycleRunFactory(agent=agent), agent=agent)
    for model, tokens, at in (
        ("a", (100, 20, 120), now),
        ("a", (50, 10, 60), now),
        ("b", (None, None, 500), now),
        ("a", (1000, 0, 1000), since - timedelta(minutes=1)),  # yesterday
    ):
        Forecast.objects.create(
            run=market.run,
            agent=agent,
            market=market,
            forecaster="llm",
            model=model,
            status="ok",
            probability=0.5,
            market_price=0.4,
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            total_tokens=tokens[2],
            created_at=at,
        )
    usage = budget_usage(agent, since, now, {"llm_tokens", "llm_call_tokens"})
    assert usage["llm_tokens"] == 680
    assert usage["llm_tokens_by_model"] == {
        "a": {"prompt": 150, "completion": 30, "total": 180},
        "b": {"prompt": 0, "completion": 0, "total": 500},
    }
    assert usage["llm_call_tokens"] == 1000  # the largest of the recent calls


def test_no_budget_means_no_limit_in_the_cycle(llm):
    agent = ForecasterAgentFactory(parameters=LLM)
    run = manual_cycle(agent)
    assert calls(llm) == 10 and "budget_stopped" not in run.summary
    assert PaperPosition.objects.filter(agent=agent).count() == run.summary["paper_fills"] > 2


def spent_cycles(agent, now):
    for _ in range(2):
        CycleRunFactory(agent=agent, queued_at=now, started_at=now, finished_at=now)


def spent_tokens(agent, now):
    market = MarketObservationFactory(run=CycleRunFactory(agent=agent), agent=agent)
    Forecast.objects.create(
        run=market.run,
        agent=agent,
        market=market,
        forecaster="llm",
        model="fake",
        status="ok",
        probability=0.5,
        market_price=0.5,
        prompt_tokens=600,
        completion_tokens=400,
        total_tokens=1000,
        created_at=now,
    )


def spent_exposure(agent, now):
    PaperPositionFactory(agent=agent, shares=250, cost=100)


def spent_loss(agent, now):
    held(agent, "m1", side="yes", shares=200, cost=100, price=0.5, at=now - timedelta(days=2))
    seen(agent, "m1", 0.4, now - timedelta(minutes=5))


@pytest.mark.parametrize(
    ("budgets", "spend", "words"),
    [
        ({"cycles_per_day": 2}, spent_cycles, "cycles_per_day: limit 2 cycles, used 2 cycles"),
        ({"llm_tokens_per_day": 1000}, spent_tokens, "limit 1,000 tokens, used 1,000 tokens"),
        (
            {"llm_cost_per_day": 1.0, "llm_model": "fake"},
            spent_tokens,
            "llm_cost_per_day: limit 1.00 USD, used 1.00 USD",
        ),
        ({"paper_exposure": 100}, spent_exposure, "paper_exposure: limit 100.00 USD, used 100.00"),
        ({"paper_loss_per_day": 10}, spent_loss, "paper_loss_per_day: limit 10.00 USD, used 20.00"),
    ],
)
def test_each_budget_crossing_pauses_once_with_one_event_one_alert_and_its_metric(
    client, settings, budgets, spend, words
):
    settings.RUNNER_LLM_PRICES = {"fake": {"prompt": 1.0, "completion": 1.0}}
    agent = ForecasterAgentFactory(slug="spender", budgets=budgets)
    spend(agent, timezone.now() - timedelta(minutes=1))
    services.agent_start(agent=agent, actor=Actor.cli())
    slot = agent.next_run

    with pytest.raises(services.BudgetExhausted) as refused:
        execution.run_scheduled(agent.pk, slot=slot)
    assert words in refused.value.message
    assert execution.run_scheduled(agent.pk, slot=slot) is None  # a second delivery: nothing new

    agent.refresh_from_db()
    assert agent.state == "paused" and agent.paused_until is not None
    [pause] = AuditEvent.objects.filter(agent=agent, action="pause")
    assert pause.source == "system" and words in pause.reason
    [alert] = Alert.objects.all()
    assert alert.kind == "budget_exceeded" and words in alert.message
    [breach] = BudgetBreach.objects.all()
    assert breach.budget == next(iter(budgets)) and breach.paused
    metrics = client.get("/metrics").content.decode()
    assert (
        f'agent_runner_budget_breaches_total{{agent="spender",budget="{breach.budget}"}} 1.0'
        in (metrics)
    )
