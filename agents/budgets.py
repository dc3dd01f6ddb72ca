"""The forecaster's usage against its budgets (hooked in by RUNNER_BUDGET_USAGE).

The runner asks before each cycle, and for the status pages, what the agent used since its budget
day began; it computes only what the agent's budgets need (`wanted`):

  llm_tokens, llm_tokens_by_model   tokens of every forecast made today (failed ones too: they
                                    were paid for), by model, from `Forecast`
  llm_call_tokens                   the largest call among the agent's last 20 LLM forecasts:
                                    the size the next call is expected to have
  paper_exposure                    open paper positions at cost (as the run summary counts it)
  paper_loss                        today's paper loss, positions marked at the latest observed
                                    price (a resolved market at its final price)
"""

from __future__ import annotations

from django.db.models import F, Sum, Window
from django.db.models.functions import Coalesce, RowNumber

from agents.models import (
    Forecast,
    MarketObservation,
    MarketResolution,
    PaperFill,
    PaperPosition,
)

RECENT_CALLS = 20


def budget_usage(agent, since, now, wanted) -> dict:
    usage: dict = {}
    if not wanted.isdisjoint({"llm_tokens", "llm_tokens_by_model"}):
        by_model = _tokens_by_model(agent, since)
        usage["llm_tokens"] = sum(row["total"] for row in by_model.values())
        usage["llm_tokens_by_model"] = by_model
    if "llm_call_tokens" in wanted:
        recent = (
            Forecast.objects.filter(agent=agent, total_tokens__isnull=False)
            .order_by("-created_at", "-id")
            .values_list("total_tokens", flat=True)[:RECENT_CALLS]
        )
        usage["llm_call_tokens"] = max(recent, default=None)
    if "paper_exposure" in wanted:
        exposure = PaperPosition.objects.filter(agent=agent).aggregate(cost=Sum("cost"))["cost"]
        usage["paper_exposure"] = round(exposure or 0.0, 2)
    if "paper_loss" in wanted:
        usage["paper_loss"] = round(max(-paper_pnl_since(agent, since, now), 0.0), 2)
    return usage


def _tokens_by_model(agent, since) -> dict:
    rows = (
        Forecast.objects.filter(agent=agent, created_at__gte=since)
        .values("model")
        .annotate(
            prompt=Coalesce(Sum("prompt_tokens"), 0),
            completion=Coalesce(Sum("completion_tokens"), 0),
            total=Coalesce(Sum("total_tokens"), 0),
        )
        .order_by("model")
    )
    return {
        row["model"]: {
            "prompt": row["prompt"],
            "completion": row["completion"],
            "total": max(row["total"], row["prompt"] + row["completion"]),
        }
        for row in rows
        if row["total"] or row["prompt"] or row["completion"]
    }


def latest_marks(agent, market_ids, *, before) -> dict[str, float]:
    """{market id: YES price} as last seen by the agent before `before`; a market resolved by
    then is marked at its final YES price."""
    newest = Window(
        RowNumber(),
        partition_by=[F("market_id")],
        order_by=[F("captured_at").desc(), F("id").desc()],
    )
    seen = (
        MarketObservation.objects.filter(
            agent=agent, market_id__in=market_ids, captured_at__lt=before, yes_price__isnull=False
        )
        .annotate(newest=newest)
        .filter(newest=1)
        .values_list("market_id", "source", "yes_price")
    )
    marks = {market_id: (source, price) for market_id, source, price in seen}
    resolved = MarketResolution.objects.filter(
        market_id__in=list(marks), resolved_at__lt=before
    ).values_list("source", "market_id", "yes_price")
    final = {(source, market_id): price for source, market_id, price in resolved}
    return {
        market_id: final.get((source, market_id), price)
        for market_id, (source, price) in marks.items()
    }


def _side_price(yes_price, side):
    return yes_price if side == "yes" else 1 - yes_price


def paper_pnl_since(agent, since, now) -> float:
    """Change of the paper book's marked value since `since`, net of what was bought since.

    A fill at the market price changes nothing by itself (cash goes out, a position of the same
    value comes in); what moves the book is the price of what it holds.
    """
    positions = list(
        PaperPosition.objects.filter(agent=agent).values("market_id", "side", "shares", "cost")
    )
    if not positions:
        return 0.0
    ids = {position["market_id"] for position in positions}
    bought = {
        (row["market_id"], row["side"]): row
        for row in PaperFill.objects.filter(agent=agent, created_at__gte=since)
        .values("market_id", "side")
        .annotate(shares=Sum("shares"), cost=Sum("cost"))
    }
    marks_now = latest_marks(agent, ids, before=now)
    marks_then = latest_marks(agent, ids, before=since)
    pnl = 0.0
    for position in positions:
        key = (position["market_id"], position["side"])
        today = bought.get(key, {"shares": 0.0, "cost": 0.0})
        at_cost = position["cost"] / position["shares"] if position["shares"] else 0.0
        now_yes = marks_now.get(position["market_id"])
        then_yes = marks_then.get(position["market_id"])
        price_now = _side_price(now_yes, position["side"]) if now_yes is not None else at_cost
        price_then = _side_price(then_yes, position["side"]) if then_yes is not None else price_now
        held_before = position["shares"] - today["shares"]
        pnl += position["shares"] * price_now - held_before * price_then - today["cost"]
    return pnl
