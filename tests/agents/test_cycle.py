"""The forecaster's whole cycle through the runner's own path (claim, execute, finish)."""

import json
import re

import pytest

from agents.models import (
    Forecast,
    MarketObservation,
    PaperAccount,
    PaperFill,
    PaperPosition,
    TradeDecision,
)
from agents.paper import PaperExecutor
from agents.status import forecast_totals
from runner import execution, services
from runner.actors import Actor
from tests.agents.factories import ForecasterAgentFactory, PaperAccountFactory
from tests.agents.test_markets import raw_market
from tests.support.fake_http import Reply, chat_reply

pytestmark = pytest.mark.django_db

SUMMARY_KEYS = {
    "source",
    "markets_loaded",
    "markets_tradeable",
    "markets_analysed",
    "forecasts",
    "decisions_approved",
    "decisions_rejected",
    "paper_exposure",
    "step_ms",
    "sample_data",
}


def run_cycle(agent):
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), trigger="cli", enqueue=False)
    claim = services.cycle_claim_queued(run_id=queued.pk, worker="test:1")
    return execution.execute_claim(claim)


@pytest.fixture
def fake_llm(fake_server, settings):
    """An OpenAI-compatible endpoint answering with `answer(request_number)` text."""

    def start(answer):
        count = {"n": 0}

        def handler(request):
            count["n"] += 1
            return chat_reply(answer(count["n"]))

        server = fake_server(handler)
        settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_API_KEY = server.url, "fake", ""
        return server

    return start


def llm_json(probability):
    return json.dumps({"probability": probability, "confidence": 0.8, "reasoning": "test"})


def test_default_cycle_over_the_sample_snapshot_honestly_records_no_trade(settings):
    settings.MARKET_SOURCE = "snapshot"
    agent = ForecasterAgentFactory(parameters={})
    run = run_cycle(agent)
    assert run.status == "succeeded", run.error_message
    summary = run.summary
    assert set(summary) >= SUMMARY_KEYS
    assert summary["source"] == "snapshot" and summary["sample_data"] is True
    assert "SAMPLE DATA" in summary["data_notice"]
    assert summary["markets_loaded"] == 240
    assert 0 < summary["markets_tradeable"] < 240
    assert summary["markets_analysed"] == 20 == summary["forecasts"]
    assert summary["decisions_approved"] == 0 and summary["decisions_rejected"] == 20
    assert summary["paper_exposure"] == 0 and summary["outcome"] == "no trade"
    assert set(summary["step_ms"]) == {"research", "filter", "analyse", "risk", "execute"}

    seen = MarketObservation.objects.filter(run=run)
    assert seen.count() == 240 and not seen.filter(is_sample=False).exists()
    assert seen.filter(tradeable=True).count() == summary["markets_tradeable"]
    assert set(seen.filter(rank__lte=20).values_list("tradeable", flat=True)) == {True}
    assert not seen.filter(tradeable=False, untradeable_reason="").exists()
    forecasts = Forecast.objects.filter(run=run)
    assert set(forecasts.values_list("forecaster", flat=True)) == {"baseline"}
    for forecast in forecasts:
        assert forecast.probability == forecast.market_price == forecast.market.yes_price
    decisions = TradeDecision.objects.filter(run=run)
    assert decisions.count() == 20
    assert {d.reason for d in decisions} == {"no edge: the forecast equals the price"}
    assert not PaperFill.objects.exists() and not PaperPosition.objects.exists()
    assert forecast_totals(agent) == {"total_forecasts": 20, "total_trades": 0}

    lines = "\n".join(run.log_lines)
    for step in ("research", "filter", "analyse", "risk", "execute"):
        assert re.search(rf"{step}: .*\d ms", lines), step
    assert "SAMPLE DATA - NOT LIVE" in lines and "no trade this cycle" in lines


def test_llm_forecasts_trade_on_paper_within_the_caps(fake_llm):
    fake_llm(lambda n: llm_json(0.99))
    agent = ForecasterAgentFactory(
        parameters={"forecaster": "llm", "markets_per_cycle": 30, "source": "snapshot"}
    )
    run = run_cycle(agent)
    assert run.status == "succeeded", run.error_message
    s = run.summary
    assert s["forecasts"] == 30 and s["forecasts_failed"] == 0
    assert s["llm_total_tokens"] == 30 * 150
    assert s["decisions_approved"] + s["decisions_rejected"] == 30
    # Exposure cap: 50% of 10,000; per-position cap 5%: at most 10 positions of 500.
    assert s["decisions_approved"] == s["paper_fills"] == PaperFill.objects.count() > 0
    assert s["paper_exposure"] <= 5000.0
    assert s["paper_cash"] == pytest.approx(10000.0 - s["paper_exposure"])
    account = PaperAccount.objects.get(agent=agent)
    assert account.cash == pytest.approx(s["paper_cash"])
    for decision in TradeDecision.objects.filter(run=run, approved=True):
        assert decision.side == "yes" and decision.edge > 0
        assert 0 < decision.size <= 500.0
        assert decision.fill.price == decision.market.yes_price
        assert decision.fill.shares == pytest.approx(decision.size / decision.price, rel=1e-6)
    rejected = TradeDecision.objects.filter(run=run, approved=False)
    assert all(d.reason for d in rejected)
    positions = PaperPosition.objects.filter(agent=agent)
    assert positions.count() == s["paper_fills"]
    assert sum(p.cost for p in positions) == pytest.approx(s["paper_exposure"])
    assert forecast_totals(agent) == {"total_forecasts": 30, "total_trades": s["paper_fills"]}


def test_an_agent_whose_paper_cash_is_spent_opens_nothing(fake_llm):
    fake_llm(lambda n: llm_json(0.99))
    agent = ForecasterAgentFactory(parameters={"forecaster": "llm", "source": "snapshot"})
    PaperAccountFactory(agent=agent, initial_balance=10_000.0, cash=0.0)
    run = run_cycle(agent)
    assert run.status == "succeeded", run.error_message
    assert run.summary["decisions_approved"] == 0 == PaperFill.objects.count()
    assert run.summary["paper_cash"] == 0.0
    assert all(d.reason for d in TradeDecision.objects.filter(run=run))


def test_a_garbage_llm_answer_fails_that_market_only(fake_llm):
    fake_llm(lambda n: "Sorry, I cannot help with that." if n == 2 else llm_json(0.5))
    agent = ForecasterAgentFactory(parameters={"forecaster": "llm", "markets_per_cycle": 4})
    run = run_cycle(agent)
    assert run.status == "succeeded", run.error_message
    assert run.summary["forecasts"] == 3 and run.summary["forecasts_failed"] == 1
    failed = Forecast.objects.get(run=run, status="failed")
    assert failed.probability is None and "answer is not JSON" in failed.error
    assert failed.total_tokens == 150
    assert TradeDecision.objects.filter(run=run).count() == 3
    assert any("forecast failed" in line for line in run.log_lines)


def test_live_mode_without_an_executor_fails_the_cycle_and_places_nothing(settings):
    settings.TRADING_MODE = "live"
    agent = ForecasterAgentFactory(trading_mode="live")
    run = run_cycle(agent)
    assert run.trading_mode == "live"
    assert run.status == "failed"
    assert run.error_type == "LiveTradingNotConfigured"
    assert "no live executor is configured" in run.error_message
    assert "Nothing was placed" in run.error_message
    assert not MarketObservation.objects.exists()
    assert not PaperAccount.objects.exists() and not PaperFill.objects.exists()


def test_an_agent_set_live_runs_dry_while_the_environment_says_dry_run(settings):
    settings.TRADING_MODE = "dry_run"
    agent = ForecasterAgentFactory(trading_mode="live")
    run = run_cycle(agent)
    assert run.status == "succeeded"
    assert run.trading_mode == "dry_run" and run.summary["executor"] == "paper"


def test_the_deadline_stops_the_cycle_between_markets(fake_server, settings):
    server = fake_server(
        lambda r: Reply(body=json.loads(chat_reply(llm_json(0.5)).payload()), delay=0.4)
    )
    settings.LLM_BASE_URL, settings.LLM_MODEL = server.url, "fake"
    agent = ForecasterAgentFactory(
        timeout_seconds=1, parameters={"forecaster": "llm", "markets_per_cycle": 20}
    )
    run = run_cycle(agent)
    assert run.status == "timed_out"
    made = Forecast.objects.filter(run=run).count()
    assert 1 <= made < 20
    assert len(server.requests) == made


def test_gamma_source_cycle_against_a_fake_gamma_server(fake_server, settings):
    markets = [
        raw_market(id="g1", liquidity="9000"),
        raw_market(id="g2", liquidity="8000", closed=True),
        raw_market(id="g3", liquidity="7000"),
    ]
    server = fake_server(lambda r: Reply(body=markets if r.query["offset"] == "0" else []))
    settings.GAMMA_BASE_URL = server.url
    agent = ForecasterAgentFactory(parameters={"source": "gamma", "gamma_page_size": 3})
    run = run_cycle(agent)
    assert run.status == "succeeded", run.error_message
    s = run.summary
    assert s["source"] == "gamma" and s["sample_data"] is False and "data_notice" not in s
    assert (s["markets_loaded"], s["markets_tradeable"], s["markets_analysed"]) == (3, 2, 2)
    seen = MarketObservation.objects.filter(run=run).order_by("market_id")
    assert [(m.market_id, m.source, m.is_sample, m.rank) for m in seen] == [
        ("g1", "gamma", False, 1),
        ("g2", "gamma", False, None),
        ("g3", "gamma", False, 2),
    ]
    assert seen[1].untradeable_reason == "closed"


def test_gamma_failure_fails_the_cycle_with_the_reason(fake_server, settings):
    server = fake_server(lambda r: Reply(status=500, body="down"))
    settings.GAMMA_BASE_URL = server.url
    agent = ForecasterAgentFactory(
        parameters={"source": "gamma", "max_retries": 1, "retry_backoff_seconds": 0}
    )
    run = run_cycle(agent)
    assert run.status == "failed" and run.error_type == "MarketSourceError"
    assert "HTTP 500" in run.error_message and "after 2 attempts" in run.error_message


def test_paper_positions_accumulate_across_runs_per_agent(fake_llm):
    fake_llm(lambda n: llm_json(0.99))
    params = {"forecaster": "llm", "markets_per_cycle": 2, "max_position_fraction": 0.01}
    agent = ForecasterAgentFactory(parameters=params)
    first = run_cycle(agent)
    second = run_cycle(agent)
    assert first.summary["paper_fills"] == 2
    # Same two markets again: each position is already at its cap, so nothing more is bought.
    assert second.summary["decisions_approved"] == 0
    reasons = set(TradeDecision.objects.filter(run=second).values_list("reason", flat=True))
    assert all(r.startswith("position cap leaves no room") for r in reasons)
    assert second.summary["paper_exposure"] == first.summary["paper_exposure"]
    other = ForecasterAgentFactory(parameters=params)
    assert run_cycle(other).summary["paper_fills"] == 2


def test_an_unreachable_llm_endpoint_fails_the_cycle(fake_server, settings):
    server = fake_server(lambda r: Reply(body={}))
    settings.LLM_BASE_URL, settings.LLM_MODEL = server.url, "fake"
    server.__exit__(None, None, None)
    agent = ForecasterAgentFactory(parameters={"forecaster": "llm", "max_retries": 0})
    run = run_cycle(agent)
    assert run.status == "failed" and run.error_type == "LLMUnavailable"
    assert "unreachable" in run.error_message
    assert not Forecast.objects.filter(run=run).exists()


def test_a_slow_llm_cannot_hold_the_cycle_past_its_deadline(fake_server, settings):
    server = fake_server(lambda r: Reply(body={}, delay=3))
    settings.LLM_BASE_URL, settings.LLM_MODEL = server.url, "fake"
    agent = ForecasterAgentFactory(
        timeout_seconds=1,
        parameters={"forecaster": "llm", "request_timeout_seconds": 60, "max_retries": 3},
    )
    run = run_cycle(agent)
    assert run.status == "timed_out"
    assert run.duration_ms < 2500  # not 60 s per attempt: requests are cut at the deadline
    assert len(server.requests) == 1


class StandInLiveExecutor(PaperExecutor):
    """A test stand-in for an operator's live executor: books on paper, under another name."""

    name = "stand-in-live"


def test_live_mode_uses_the_configured_live_executor(settings):
    settings.TRADING_MODE = "live"
    settings.FORECASTER_LIVE_EXECUTOR = "tests.agents.test_cycle.StandInLiveExecutor"
    run = run_cycle(ForecasterAgentFactory(trading_mode="live"))
    assert run.status == "succeeded", run.error_message
    assert run.trading_mode == "live" and run.summary["executor"] == "stand-in-live"
