"""Markets as the forecaster sees them: parsed from Gamma's raw shape, filtered, ranked.

Gamma sends `outcomes`, `outcomePrices` and `clobTokenIds` as JSON *strings* and numbers sometimes
as strings (`liquidity`) beside numeric twins (`liquidityNum`). Parsing is strict about what sizing
needs (two outcomes, a YES price strictly between 0 and 1) and tolerant about the rest; a market
that cannot be parsed is kept with the reason, so it shows up as "seen, not tradeable".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime


class MalformedMarket(ValueError):
    """A raw market lacks something the pipeline needs; the message says what."""


@dataclass
class Market:
    market_id: str
    question: str
    slug: str = ""
    condition_id: str = ""
    end_date: datetime | None = None
    outcomes: list[str] = field(default_factory=list)
    prices: list[float] = field(default_factory=list)
    token_ids: list[str] = field(default_factory=list)
    liquidity: float = 0.0
    volume: float = 0.0
    active: bool = False
    closed: bool = True
    archived: bool = False
    accepting_orders: bool = False
    parse_error: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def yes_price(self) -> float | None:
        return self.prices[0] if self.prices else None

    @property
    def no_price(self) -> float | None:
        return self.prices[1] if len(self.prices) > 1 else None


def json_list(raw: dict, key: str) -> list:
    """A list that Gamma may send as a JSON string (`outcomes`, `outcomePrices`, ...)."""
    value = raw.get(key)
    if value is None:
        raise MalformedMarket(f"{key} is missing")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise MalformedMarket(f"{key} is not a JSON list: {exc.msg}") from exc
    if not isinstance(value, list):
        raise MalformedMarket(f"{key} is not a list")
    return value


def _number(raw: dict, *keys: str) -> float:
    """The first of `keys` that holds a number (or a numeric string); 0.0 if none does."""
    for key in keys:
        value = raw.get(key)
        if isinstance(value, bool) or value in (None, ""):
            continue
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return 0.0


def parse_market(raw: Any) -> Market:
    """A Market from one raw Gamma object; `parse_error` says why it cannot be traded, if so."""
    if not isinstance(raw, dict):
        return Market(market_id="", question="", parse_error="market is not a JSON object")
    market = Market(
        market_id=str(raw.get("id") or ""),
        question=str(raw.get("question") or ""),
        slug=str(raw.get("slug") or ""),
        condition_id=str(raw.get("conditionId") or ""),
        liquidity=_number(raw, "liquidityNum", "liquidity"),
        volume=_number(raw, "volumeNum", "volume"),
        active=raw.get("active") is True,
        closed=raw.get("closed") is not False,
        archived=raw.get("archived") is True,
        accepting_orders=raw.get("acceptingOrders") is True,
        raw=raw,
    )
    end = raw.get("endDate")
    if isinstance(end, str):
        try:
            market.end_date = parse_datetime(end)
        except ValueError:
            market.end_date = None
    try:
        if not market.market_id:
            raise MalformedMarket("id is missing")
        market.outcomes = [str(o) for o in json_list(raw, "outcomes")]
        market.token_ids = [str(t) for t in json_list(raw, "clobTokenIds")]
        prices = json_list(raw, "outcomePrices")
        try:
            market.prices = [float(p) for p in prices]
        except (TypeError, ValueError) as exc:
            raise MalformedMarket(f"outcomePrices holds a non-number: {exc}") from exc
        if len(market.prices) != len(market.outcomes):
            raise MalformedMarket("outcomePrices and outcomes differ in length")
    except MalformedMarket as exc:
        market.parse_error = str(exc)
    return market


def untradeable_reason(market: Market, *, now: datetime, min_liquidity: float) -> str:
    """Why this market cannot be traded now ("" if it can). The first failing check wins."""
    if market.parse_error:
        return f"malformed: {market.parse_error}"
    if not market.active:
        return "not active"
    if market.closed:
        return "closed"
    if market.archived:
        return "archived"
    if not market.accepting_orders:
        return "not accepting orders"
    if market.end_date is None:
        return "no end date"
    if market.end_date <= now:
        return f"ended {market.end_date.isoformat()}"
    if len(market.outcomes) != 2:
        return f"not binary ({len(market.outcomes)} outcomes)"
    if not 0 < market.yes_price < 1:
        return f"YES price {market.yes_price} is not strictly between 0 and 1"
    if market.liquidity < min_liquidity:
        return f"liquidity {market.liquidity:.2f} below min_liquidity {min_liquidity:.2f}"
    return ""


def rank(markets: list[Market]) -> list[Market]:
    """Deepest books first: liquidity, then volume, descending; market id breaks ties."""
    return sorted(markets, key=lambda m: (-m.liquidity, -m.volume, m.market_id))
