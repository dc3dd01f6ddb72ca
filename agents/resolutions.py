"""Market resolutions: how markets ended, recorded once per market, to score forecasts against.

Two sources, both applied by `manage.py resolvemarkets`:

- `gamma`: the closed markets' final prices from the Gamma API, asked only about the markets the
  agents observed from Gamma and that have no resolution yet
  (`GET /markets?id=..&id=..&closed=true`, up to 50 ids per request).
- `--sample`: `agents/sample_data/resolutions.json`, made-up SAMPLE resolutions of the SAMPLE
  snapshot's markets. They carry no dates, so each is recorded as resolving when applied.

A market counts as resolved when it is closed, has two outcomes, and its final YES price is 1 or
0 (or 0.5 for both: a split). A closed market still priced in between is not final yet and is
asked about again next time. Recording is idempotent: a market keeps its first resolution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from agents.markets import MalformedMarket, json_list
from agents.models import MarketObservation, MarketResolution
from agents.sources import GammaSource, MarketSourceError

SAMPLE_RESOLUTIONS_PATH = Path(__file__).parent / "sample_data" / "resolutions.json"
IDS_PER_REQUEST = 50


@dataclass
class Applied:
    """What one `resolvemarkets` did."""

    source: str
    sample_data: bool
    asked: int = 0
    recorded: int = 0
    already_recorded: int = 0
    not_final: int = 0
    requests: int = 0
    notice: str = ""
    market_ids: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "sample_data": self.sample_data,
            "asked": self.asked,
            "recorded": self.recorded,
            "already_recorded": self.already_recorded,
            "not_final": self.not_final,
            "requests": self.requests,
            "notice": self.notice,
        }


def final_outcome(raw) -> tuple[float, str] | None:
    """(final YES price, winning outcome or "split") of a closed binary market; None when the
    market is open, not binary, or its prices are not final."""
    if not isinstance(raw, dict) or raw.get("closed") is not True:
        return None
    try:
        outcomes = [str(outcome) for outcome in json_list(raw, "outcomes")]
        prices = tuple(float(price) for price in json_list(raw, "outcomePrices"))
    except (MalformedMarket, TypeError, ValueError):
        return None
    if len(outcomes) != 2 or len(prices) != 2:
        return None
    if prices == (1.0, 0.0):
        return 1.0, outcomes[0]
    if prices == (0.0, 1.0):
        return 0.0, outcomes[1]
    if prices == (0.5, 0.5):
        return 0.5, "split"
    return None


def _moment(raw, *keys):
    for key in keys:
        value = raw.get(key)
        if isinstance(value, str):
            try:
                moment = parse_datetime(value.strip())
            except ValueError:
                moment = None
            if moment is not None and timezone.is_aware(moment):
                return moment
    return None


def record(raw_markets, *, source, is_sample, now, time_keys=("closedTime", "endDate")) -> Applied:
    """Record the final ones among `raw_markets` (Gamma-shaped), each once.

    The resolution time is the first of `time_keys` a market carries (Gamma's `closedTime`,
    else its `endDate`), else `now`: the SAMPLE resolutions, read with no time keys, resolve
    the moment they are applied.
    """
    applied = Applied(source=source, sample_data=is_sample, asked=len(raw_markets))
    final = {}
    for raw in raw_markets:
        outcome = final_outcome(raw)
        if outcome is None:
            applied.not_final += 1
            continue
        market_id = str(raw.get("id") or "")[:100]
        final[market_id] = MarketResolution(
            source=source,
            market_id=market_id,
            question=str(raw.get("question") or ""),
            is_sample=is_sample,
            yes_price=outcome[0],
            outcome=outcome[1][:100],
            resolved_at=_moment(raw, *time_keys) or now,
            recorded_at=now,
        )
    known = set(
        MarketResolution.objects.filter(source=source, market_id__in=list(final)).values_list(
            "market_id", flat=True
        )
    )
    new = [resolution for market_id, resolution in final.items() if market_id not in known]
    # ignore_conflicts: another resolvemarkets may record the same market meanwhile.
    MarketResolution.objects.bulk_create(new, ignore_conflicts=True)
    applied.recorded = len(new)
    applied.already_recorded = len(final) - len(new)
    applied.market_ids = sorted(final)
    return applied


def apply_sample(*, path: Path = SAMPLE_RESOLUTIONS_PATH, now=None) -> Applied:
    """Record the shipped SAMPLE resolutions (made up) as resolving now."""
    now = now or timezone.now()
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MarketSourceError(f"sample resolutions {path} cannot be read: {exc}") from exc
    if not isinstance(document, dict) or document.get("sample_data") is not True:
        raise MarketSourceError(
            f"{path} is not marked 'sample_data': true; refusing to record it as sample data"
        )
    markets = document.get("markets")
    if not isinstance(markets, list):
        raise MarketSourceError(f"sample resolutions {path} have no 'markets' list")
    applied = record(markets, source="snapshot", is_sample=True, now=now, time_keys=())
    applied.notice = str(document.get("notice") or "SAMPLE RESOLUTIONS - NOT REAL")
    return applied


def unresolved_gamma_markets(limit: int) -> list[str]:
    """Ids of markets observed from Gamma with no resolution yet, at most `limit`."""
    resolved = MarketResolution.objects.filter(source="gamma", market_id=OuterRef("market_id"))
    return list(
        MarketObservation.objects.filter(source="gamma")
        .exclude(market_id="")
        .filter(~Exists(resolved))
        .values_list("market_id", flat=True)
        .distinct()
        .order_by("market_id")[:limit]
    )


class GammaClosedMarkets(GammaSource):
    """Gamma's `/markets` asked about given market ids (closed ones), 50 per request."""

    def fetch(self, market_ids: list[str]) -> tuple[list, int]:
        markets, requests = [], 0
        with self.client() as client:
            for start in range(0, len(market_ids), IDS_PER_REQUEST):
                if start:
                    self.checkpoint()
                chunk = market_ids[start : start + IDS_PER_REQUEST]
                params = {"id": chunk, "closed": "true", "limit": len(chunk), "offset": 0}
                batch, attempts = self._get_page(client, params)
                markets.extend(batch)
                requests += attempts
        return markets, requests


def apply_gamma(*, source: GammaClosedMarkets, limit: int, now=None) -> Applied:
    """Ask Gamma how the observed, unresolved markets ended; record the final ones.
    Raises MarketSourceError when Gamma cannot be read."""
    now = now or timezone.now()
    ids = unresolved_gamma_markets(limit)
    markets, requests = source.fetch(ids) if ids else ([], 0)
    wanted = set(ids)
    applied = record(
        [raw for raw in markets if isinstance(raw, dict) and str(raw.get("id")) in wanted],
        source="gamma",
        is_sample=False,
        now=now,
    )
    applied.asked, applied.requests = len(ids), requests
    applied.not_final = len(ids) - applied.recorded - applied.already_recorded
    return applied
