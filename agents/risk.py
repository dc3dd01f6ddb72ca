"""Risk: fractional Kelly sizing for a binary share, with a minimum edge and two caps.

For a YES share at price q and belief p, full Kelly stakes f = (p - q) / (1 - q) of the bankroll;
for a NO share (bought at 1 - q) it stakes f = (q - p) / q. We stake `kelly_fraction * f` of the
paper equity, then cap it by the room left under the per-position cap and under the total
exposure cap (both fractions of equity) and by the cash on hand. The stake is rounded to the
nearest cent and every limit *down* to a cent, so rounding never exceeds a cap. Every rejection
says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

YES, NO = "yes", "no"


@dataclass(frozen=True)
class RiskLimits:
    kelly_fraction: float
    min_edge: float
    max_position_fraction: float
    max_exposure_fraction: float


@dataclass(frozen=True)
class Sizing:
    approved: bool
    side: str  # "yes", "no", or "" when belief equals price
    edge: float  # belief minus YES price
    kelly: float  # full-Kelly fraction for `side` (0 when there is no side)
    size: float  # USD to stake; 0 unless approved
    price: float  # price of one share of `side`
    reason: str


def kelly(probability: float, price: float) -> tuple[str, float]:
    """(side, full-Kelly fraction) for belief p and YES price q, exactly as DESIGN §7."""
    if probability > price:
        return YES, (probability - price) / (1 - price)
    if probability < price:
        return NO, (price - probability) / price
    return "", 0.0


def _cents_down(amount: float) -> float:
    if amount <= 0:
        return 0.0
    return float(Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def size_trade(
    *,
    probability: float,
    price: float,
    limits: RiskLimits,
    equity: float,
    exposure: float,
    position_exposure: float,
    cash: float,
    caps: dict[str, float] | None = None,
) -> Sizing:
    """Size one trade. `exposure` is all open cost; `position_exposure` the part in this market;
    `caps` are further limits by name, in USD (the room left under a budget)."""
    edge = probability - price
    side, full_kelly = kelly(probability, price)
    share_price = price if side == YES else 1 - price

    def rejected(reason: str) -> Sizing:
        return Sizing(False, side, edge, full_kelly, 0.0, share_price, reason)

    if not side:
        return rejected("no edge: the forecast equals the price")
    if abs(edge) < limits.min_edge:
        return rejected(
            f"edge below min_edge: |edge| {abs(edge):.4f} < min_edge {limits.min_edge:.4f}"
        )
    # The Kelly stake is an estimate: rounded to the nearest cent. Limits are hard: rounded down.
    stake = round(limits.kelly_fraction * full_kelly * equity, 2)
    candidates = {
        "kelly stake": stake,
        "position cap": _cents_down(limits.max_position_fraction * equity - position_exposure),
        "exposure cap": _cents_down(limits.max_exposure_fraction * equity - exposure),
        "paper cash": _cents_down(cash),
        **{name: _cents_down(room) for name, room in (caps or {}).items()},
    }
    binding = min(candidates, key=candidates.get)
    size = max(candidates[binding], 0.0)
    if size <= 0:
        return rejected(f"{binding} leaves no room: {size:.2f} USD")
    detail = f"kelly stake {stake:.2f} USD" + (
        f", limited by {binding}" if binding != "kelly stake" else ""
    )
    return Sizing(True, side, edge, full_kelly, size, share_price, f"approved: {detail}")
