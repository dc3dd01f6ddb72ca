import json
from datetime import UTC, datetime

import pytest

from agents.markets import parse_market, rank, untradeable_reason
from agents.sample_data.generate import build
from agents.sources import SNAPSHOT_PATH

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def raw_market(**overrides):
    market = {
        "id": "1",
        "question": "[SAMPLE] test market",
        "endDate": "2030-01-01T00:00:00Z",
        "outcomes": '["Yes", "No"]',
        "outcomePrices": '["0.4", "0.6"]',
        "clobTokenIds": '["11", "22"]',
        "liquidity": "5000.5",
        "volume": "100",
        "active": True,
        "closed": False,
        "archived": False,
        "acceptingOrders": True,
    }
    market.update(overrides)
    return market


def test_snapshot_is_labelled_sample_data_in_gammas_raw_shape():
    document = json.loads(SNAPSHOT_PATH.read_text())
    assert document["sample_data"] is True
    assert "NOT LIVE" in document["notice"]
    assert (SNAPSHOT_PATH.parent / "README.md").read_text().startswith("# SAMPLE DATA")
    markets = document["markets"]
    assert len(markets) >= 200
    for market in markets:
        assert market["question"].startswith("[SAMPLE]")
        # Gamma sends these lists as JSON strings, not JSON arrays.
        assert isinstance(market["outcomes"], str)
        assert isinstance(market["clobTokenIds"], str)
        assert isinstance(market.get("outcomePrices", ""), str)
        for key in ("endDate", "liquidity", "volume", "active", "closed", "archived"):
            assert key in market
        assert "acceptingOrders" in market and "enableOrderBook" in market


def test_snapshot_generator_reproduces_the_committed_file():
    assert json.loads(SNAPSHOT_PATH.read_text()) == build()


def test_parse_decodes_json_string_fields_and_numeric_strings():
    market = parse_market(raw_market())
    assert market.parse_error == ""
    assert market.outcomes == ["Yes", "No"]
    assert market.prices == [0.4, 0.6]
    assert market.token_ids == ["11", "22"]
    assert market.liquidity == 5000.5
    assert market.end_date == datetime(2030, 1, 1, tzinfo=UTC)
    assert untradeable_reason(market, now=NOW, min_liquidity=1000) == ""


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"active": False}, "not active"),
        ({"closed": True}, "closed"),
        ({"archived": True}, "archived"),
        ({"acceptingOrders": False}, "not accepting orders"),
        ({"endDate": "2026-11-22T23:59:59Z"}, "ended"),
        ({"endDate": None}, "no end date"),
        ({"liquidity": "999.99"}, "liquidity 999.99 below min_liquidity 1000.00"),
        ({"outcomes": '["A", "B", "C"]', "outcomePrices": '["0.2","0.3","0.5"]'}, "not binary"),
        ({"outcomePrices": '["1", "0"]'}, "YES price 1.0 is not strictly between 0 and 1"),
        ({"outcomePrices": "not json"}, "malformed: outcomePrices is not a JSON list"),
        ({"outcomePrices": '["x", "y"]'}, "malformed: outcomePrices holds a non-number"),
        ({"outcomePrices": '["0.5"]'}, "malformed: outcomePrices and outcomes differ"),
    ],
)
def test_filter_gives_the_reason_a_market_is_not_tradeable(overrides, reason):
    market = parse_market(raw_market(**overrides))
    assert untradeable_reason(market, now=NOW, min_liquidity=1000).startswith(reason)


def test_missing_prices_and_non_objects_are_kept_as_malformed():
    raw = raw_market()
    del raw["outcomePrices"]
    assert parse_market(raw).parse_error == "outcomePrices is missing"
    assert parse_market(["not", "a", "market"]).parse_error == "market is not a JSON object"


def test_end_date_is_judged_against_the_given_now():
    market = parse_market(raw_market(endDate="2027-01-01T00:00:00Z"))
    assert untradeable_reason(market, now=NOW, min_liquidity=0) == ""
    later = datetime(2027, 1, 1, tzinfo=UTC)
    assert untradeable_reason(market, now=later, min_liquidity=0).startswith("ended")


def test_rank_puts_deepest_books_first_with_a_stable_tie_break():
    markets = [
        parse_market(raw_market(id="a", liquidity="100", volume="5")),
        parse_market(raw_market(id="b", liquidity="300", volume="1")),
        parse_market(raw_market(id="c", liquidity="100", volume="9")),
        parse_market(raw_market(id="d", liquidity="100", volume="9")),
    ]
    assert [m.market_id for m in rank(markets)] == ["b", "c", "d", "a"]
