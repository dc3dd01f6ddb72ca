"""Market resolutions: the shipped SAMPLE set (deterministic, labelled), Gamma's closed markets'
final prices (a real HTTP server stands in for Gamma), and `manage.py resolvemarkets`."""

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from agents.models import MarketResolution
from agents.resolutions import (
    SAMPLE_RESOLUTIONS_PATH,
    GammaClosedMarkets,
    apply_gamma,
    apply_sample,
    final_outcome,
)
from agents.sample_data.generate import build, build_resolutions
from agents.sources import MarketSourceError
from tests.agents.factories import MarketObservationFactory
from tests.agents.test_markets import raw_market
from tests.support.fake_http import Reply

pytestmark = pytest.mark.django_db


def test_the_sample_resolutions_are_deterministic_and_labelled():
    document = json.loads(SAMPLE_RESOLUTIONS_PATH.read_text())
    assert document == build_resolutions(build()["markets"])  # the generator reproduces it
    assert document["sample_data"] is True and "NOT REAL" in document["notice"]
    markets = document["markets"]
    assert len(markets) == 186
    assert all(m["question"].startswith("[SAMPLE]") and m["closed"] is True for m in markets)
    assert {json.loads(m["outcomePrices"])[0] for m in markets} == {"1", "0"}
    assert "resolutions.json" in (SAMPLE_RESOLUTIONS_PATH.parent / "README.md").read_text()


def test_applying_the_sample_set_records_each_market_once():
    now = timezone.now()
    applied = apply_sample(now=now)
    assert (applied.recorded, applied.already_recorded, applied.sample_data) == (186, 0, True)
    resolution = MarketResolution.objects.get(market_id="900001")
    assert (resolution.source, resolution.is_sample, resolution.resolved_at) == (
        "snapshot",
        True,
        now,
    )
    again = apply_sample()
    assert (again.recorded, again.already_recorded) == (0, 186)
    assert MarketResolution.objects.count() == 186


def test_an_unlabelled_file_is_refused(tmp_path):
    path = tmp_path / "resolutions.json"
    path.write_text(json.dumps({"markets": []}))
    with pytest.raises(MarketSourceError, match="not marked 'sample_data': true"):
        apply_sample(path=path)


@pytest.mark.parametrize(
    ("prices", "closed", "expected"),
    [
        ('["1", "0"]', True, (1.0, "Yes")),
        ('["0", "1"]', True, (0.0, "No")),
        ('["0.5", "0.5"]', True, (0.5, "split")),
        ('["0.97", "0.03"]', True, None),  # closed, but not final yet
        ('["1", "0"]', False, None),  # still open
        ("not json", True, None),
    ],
)
def test_only_a_closed_market_with_final_prices_counts_as_resolved(prices, closed, expected):
    assert final_outcome(raw_market(outcomePrices=prices, closed=closed)) == expected
    three = raw_market(outcomes='["a", "b", "c"]', outcomePrices='["1", "0", "0"]', closed=True)
    assert final_outcome(three) is None


def gamma_closed(market_id, prices, closed_time="2026-11-20 18:30:00+00"):
    return raw_market(
        id=market_id, outcomePrices=prices, closed=True, active=False, closedTime=closed_time
    )


@pytest.fixture
def gamma(fake_server, settings):
    answers = {
        "101": gamma_closed("101", '["1", "0"]'),
        "102": gamma_closed("102", '["0", "1"]', closed_time=None),
        "103": gamma_closed("103", '["0.5", "0.5"]'),
        "104": gamma_closed("104", '["0.98", "0.02"]'),
    }

    def handler(request):
        ids = request.query_lists.get("id", [])
        return Reply(body=[answers[i] for i in ids if i in answers])

    server = fake_server(handler)
    settings.GAMMA_BASE_URL = server.url
    return server


def source(server):
    return GammaClosedMarkets(base_url=server.url, max_retries=0, timeout_seconds=5)


def test_gamma_is_asked_about_the_observed_unresolved_markets_in_chunks(gamma):
    for number in range(101, 161):
        MarketObservationFactory(market_id=str(number), source="gamma", is_sample=False)
    MarketObservationFactory(market_id="101", source="snapshot")  # a SAMPLE one: not asked

    applied = apply_gamma(source=source(gamma), limit=1000)

    assert (applied.asked, applied.requests, applied.recorded, applied.not_final) == (
        60,
        2,
        3,
        57,
    )
    asked = [request.query_lists["id"] for request in gamma.requests]
    assert [len(ids) for ids in asked] == [50, 10]
    assert all(request.query["closed"] == "true" for request in gamma.requests)
    win = MarketResolution.objects.get(market_id="101")
    assert (win.source, win.is_sample, win.yes_price, win.outcome) == ("gamma", False, 1.0, "Yes")
    assert win.resolved_at == datetime(2026, 11, 20, 18, 30, tzinfo=UTC)
    # No closedTime: the market's endDate.
    assert MarketResolution.objects.get(market_id="102").resolved_at == datetime(
        2030, 1, 1, tzinfo=UTC
    )
    assert MarketResolution.objects.get(market_id="103").outcome == "split"

    again = apply_gamma(source=source(gamma), limit=1000)
    assert again.asked == 57 and again.recorded == 0  # resolved markets are not asked again


def test_resolvemarkets_prints_what_it_did(gamma):
    MarketObservationFactory(market_id="101", source="gamma", is_sample=False)
    out = StringIO()
    call_command("resolvemarkets", stdout=out)
    assert out.getvalue().strip() == (
        "Gamma: asked about 1 unresolved market(s) in 1 request(s); 1 resolved and recorded, "
        "0 already recorded, 0 still open or not final."
    )
    out = StringIO()
    call_command("resolvemarkets", "--sample", "--json", stdout=out)
    assert json.loads(out.getvalue())["recorded"] == 186


def test_resolvemarkets_exits_1_when_gamma_fails(fake_server, settings):
    server = fake_server(lambda request: Reply(status=502, body={"error": "bad gateway"}))
    settings.GAMMA_BASE_URL = server.url
    MarketObservationFactory(market_id="101", source="gamma", is_sample=False)
    with pytest.raises(CommandError) as failed:
        call_command("resolvemarkets", stdout=StringIO())
    assert failed.value.returncode == 1 and "Gamma GET" in str(failed.value)
    assert not MarketResolution.objects.exists()
