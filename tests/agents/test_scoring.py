"""Forecast scorekeeping (agents.scoring): Brier score, log loss and calibration against
hand-computed values, the market price as the baseline, realised paper P&L, and the database's
arithmetic against the plain functions."""

import math
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agents.models import Forecast, MarketResolution
from agents.scoring import brier, bucket_of, calibration, forecast_scores, log_loss
from tests.agents.factories import (
    ForecasterAgentFactory,
    MarketObservationFactory,
    PaperFillFactory,
)
from tests.factories import CycleRunFactory

# (forecast p, market price q when it was made, final YES price o)
FIXED = [
    (0.8, 0.6, 1.0),
    (0.3, 0.5, 0.0),
    (0.6, 0.7, 0.0),
    (0.95, 0.9, 1.0),
    (0.85, 0.85, 0.0),
]
# By hand: Brier(p) = (0.04 + 0.09 + 0.36 + 0.0025 + 0.7225) / 5
HAND_BRIER = 0.243
HAND_MARKET_BRIER = (0.16 + 0.25 + 0.49 + 0.01 + 0.7225) / 5  # 0.3265
# -(ln 0.8 + ln 0.7 + ln 0.4 + ln 0.95 + ln 0.15) / 5
HAND_LOG_LOSS = (0.22314355 + 0.35667494 + 0.91629073 + 0.05129329 + 1.89711998) / 5
HAND_MARKET_LOG_LOSS = (0.51082562 + 0.69314718 + 1.20397280 + 0.10536052 + 1.89711998) / 5
HAND_CALIBRATION = [  # bucket: forecasts, mean forecast, observed frequency
    ("0.3-0.4", 1, 0.3, 0.0),
    ("0.6-0.7", 1, 0.6, 0.0),
    ("0.8-0.9", 2, 0.825, 0.5),
    ("0.9-1.0", 1, 0.95, 1.0),
]


def test_the_plain_functions_match_the_hand_computed_scores():
    pairs = [(p, o) for p, _q, o in FIXED]
    assert brier(pairs) == pytest.approx(HAND_BRIER)
    assert log_loss(pairs) == pytest.approx(HAND_LOG_LOSS, abs=1e-8)
    assert brier([(q, o) for _p, q, o in FIXED]) == pytest.approx(HAND_MARKET_BRIER)
    assert [
        (b["bucket"], b["forecasts"], b["mean_forecast"], b["observed"]) for b in calibration(pairs)
    ] == [
        (label, n, pytest.approx(mean), observed) for label, n, mean, observed in HAND_CALIBRATION
    ]
    assert brier([]) is None and log_loss([]) is None and calibration([]) == []


def test_buckets_are_tenths_with_certainty_in_the_top_one():
    assert [bucket_of(p) for p in (0.0, 0.05, 0.1, 0.3, 0.7, 0.99, 1.0)] == [0, 0, 1, 3, 7, 9, 9]


def forecast(agent, market_id, p, q, *, at, forecaster="llm", status="ok", source="snapshot"):
    observation = MarketObservationFactory(
        run=CycleRunFactory(agent=agent, queued_at=at),
        agent=agent,
        market_id=market_id,
        source=source,
        yes_price=q,
        captured_at=at,
    )
    return Forecast.objects.create(
        run=observation.run,
        agent=agent,
        market=observation,
        forecaster=forecaster,
        status=status,
        probability=p if status == "ok" else None,
        market_price=q,
        created_at=at,
    )


def resolve(market_id, o, at, source="snapshot"):
    MarketResolution.objects.create(
        source=source,
        market_id=market_id,
        is_sample=source == "snapshot",
        yes_price=o,
        outcome={1.0: "Yes", 0.0: "No"}.get(o, "split"),
        resolved_at=at,
        recorded_at=at,
    )


@pytest.mark.django_db
def test_the_report_scores_resolved_forecasts_per_forecaster_against_the_market():
    agent = ForecasterAgentFactory(slug="scored")
    now = timezone.now()
    made, resolved = now - timedelta(days=2), now - timedelta(days=1)
    for index, (p, q, o) in enumerate(FIXED):
        forecast(agent, f"m{index}", p, q, at=made)
        forecast(agent, f"m{index}", q, q, at=made, forecaster="baseline")
        resolve(f"m{index}", o, resolved)
    # Not scored: made after the resolution, failed, unresolved, or outside the window.
    forecast(agent, "m0", 0.1, 0.6, at=resolved + timedelta(hours=1))
    forecast(agent, "m1", None, 0.5, at=made, status="failed")
    forecast(agent, "open", 0.9, 0.5, at=made)
    forecast(agent, "m2", 0.1, 0.7, at=now - timedelta(days=20))
    # The same market id from another source is another market.
    forecast(agent, "m3", 0.01, 0.9, at=made, source="gamma")

    outputs = forecast_scores(agent, now - timedelta(days=7), now)

    by_name = {row["forecaster"]: row for row in outputs["forecast_scores"]}
    llm, baseline = by_name["llm"], by_name["baseline"]
    assert llm["resolved_forecasts"] == baseline["resolved_forecasts"] == 5
    assert llm["brier"] == pytest.approx(HAND_BRIER)
    assert llm["log_loss"] == pytest.approx(HAND_LOG_LOSS, abs=1e-6)
    assert llm["market_brier"] == pytest.approx(HAND_MARKET_BRIER)
    assert llm["market_log_loss"] == pytest.approx(HAND_MARKET_LOG_LOSS, abs=1e-6)
    assert llm["brier_skill"] == pytest.approx(1 - HAND_BRIER / HAND_MARKET_BRIER, abs=1e-6)
    # The baseline forecasts the market price, so it scores exactly the market's scores.
    assert baseline["brier"] == baseline["market_brier"] == pytest.approx(HAND_MARKET_BRIER)
    assert baseline["log_loss"] == baseline["market_log_loss"]
    assert baseline["brier_skill"] == 0.0

    llm_buckets = [row for row in outputs["forecast_calibration"] if row["forecaster"] == "llm"]
    assert [
        (r["bucket"], r["forecasts"], r["mean_forecast"], r["observed"])
        for r in llm_buckets
        if r["forecasts"]
    ] == [(label, n, pytest.approx(mean), o) for label, n, mean, o in HAND_CALIBRATION]
    market_buckets = {r["bucket"]: r for r in llm_buckets if r["market_forecasts"]}
    assert sorted(market_buckets) == ["0.5-0.6", "0.6-0.7", "0.7-0.8", "0.8-0.9", "0.9-1.0"]
    assert market_buckets["0.8-0.9"]["market_mean_price"] == pytest.approx(0.85)
    assert outputs["forecast_scores_notice"].startswith("10 of the scored forecasts")


@pytest.mark.django_db
def test_realised_paper_pnl_on_resolved_markets():
    agent = ForecasterAgentFactory(slug="trader")
    now = timezone.now()
    made = now - timedelta(days=2)
    yes = forecast(agent, "win", 0.9, 0.6, at=made)
    no = forecast(agent, "lose", 0.2, 0.5, at=made)
    open_market = forecast(agent, "open", 0.9, 0.5, at=made)
    fills = ((yes, "yes", 100, 60), (no, "no", 50, 25), (open_market, "yes", 10, 5))
    for source, side, shares, cost in fills:
        PaperFillFactory(
            run=source.run,
            agent=agent,
            decision__forecast=source,
            decision__market=source.market,
            decision__agent=agent,
            market_id=source.market.market_id,
            side=side,
            shares=shares,
            cost=cost,
            created_at=made,
        )
    resolve("win", 1.0, now - timedelta(days=1))
    resolve("lose", 1.0, now - timedelta(days=1))  # the NO shares pay nothing
    outputs = forecast_scores(agent, now - timedelta(days=7), now)
    assert outputs["resolved_paper_pnl"] == [
        {
            "agent": "trader",
            "forecaster": "llm",
            "fills": 2,
            "cost": 85.0,
            "payout": 100.0,
            "realised_pnl": 15.0,
        }
    ]


probability = st.floats(min_value=0, max_value=1, allow_nan=False)
outcome = st.sampled_from([0.0, 0.5, 1.0])
pairs_strategy = st.lists(st.tuples(probability, outcome), min_size=1, max_size=40)


@given(pairs_strategy)
def test_score_ranges_and_calibration_totals(pairs):
    assert 0 <= brier(pairs) <= 1
    assert log_loss(pairs) >= 0
    buckets = calibration(pairs)
    assert sum(b["forecasts"] for b in buckets) == len(pairs)
    assert sum(b["forecasts"] * b["observed"] for b in buckets) == pytest.approx(
        sum(o for _p, o in pairs)
    )
    for b in buckets:
        low, high = (float(x) for x in b["bucket"].split("-"))
        assert low - 1e-12 <= b["mean_forecast"] <= high + 1e-12


@given(st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=40))
def test_perfect_and_coin_flip_forecasts(outcomes):
    assert brier([(o, o) for o in outcomes]) == 0
    assert log_loss([(o, o) for o in outcomes]) == pytest.approx(0, abs=1e-12)
    assert brier([(0.5, o) for o in outcomes]) == pytest.approx(0.25)
    assert log_loss([(0.5, o) for o in outcomes]) == pytest.approx(math.log(2))


@given(pairs_strategy, pairs_strategy)
def test_the_score_of_two_sets_is_their_size_weighted_mean(first, second):
    merged = brier(first + second)
    weighted = (brier(first) * len(first) + brier(second) * len(second)) / (
        len(first) + len(second)
    )
    assert merged == pytest.approx(weighted)


@pytest.mark.django_db
@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(probability, probability, outcome), min_size=1, max_size=25))
@example([(5e-324, 1e-200, 0.0), (1e-160, 0.3, 1.0)])  # products that underflow on PostgreSQL
def test_the_database_computes_what_the_plain_functions_compute(rows):
    agent = ForecasterAgentFactory()
    now = timezone.now()
    for index, (p, q, o) in enumerate(rows):
        forecast(agent, f"h{agent.pk}-{index}", p, q, at=now - timedelta(hours=2))
        resolve(f"h{agent.pk}-{index}", o, now - timedelta(hours=1))
    [scores] = forecast_scores(agent, now - timedelta(days=1), now)["forecast_scores"]
    assert scores["resolved_forecasts"] == len(rows)
    assert scores["brier"] == pytest.approx(brier([(p, o) for p, _q, o in rows]), abs=1e-6)
    assert scores["log_loss"] == pytest.approx(log_loss([(p, o) for p, _q, o in rows]), abs=1e-5)
    assert scores["market_brier"] == pytest.approx(brier([(q, o) for _p, q, o in rows]), abs=1e-6)
    expected = {
        b["bucket"]: (b["forecasts"], b["mean_forecast"], b["observed"])
        for b in calibration([(p, o) for p, _q, o in rows])
    }
    found = {
        r["bucket"]: (r["forecasts"], r["mean_forecast"], r["observed"])
        for r in forecast_scores(agent, now - timedelta(days=1), now)["forecast_calibration"]
        if r["forecasts"]
    }
    assert found.keys() == expected.keys()
    for bucket, (n, mean, observed) in expected.items():
        assert found[bucket][0] == n
        assert found[bucket][1] == pytest.approx(mean, abs=1e-6)
        assert found[bucket][2] == pytest.approx(observed, abs=1e-6)
