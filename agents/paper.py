"""Execution: paper fills in `dry_run`; live mode only through an executor someone configured.

Nothing here places a real order. `executor_for` refuses a live cycle unless the setting
`FORECASTER_LIVE_EXECUTOR` names an executor class (none ships with the project), and it does so
before the cycle loads a single market.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Sum
from django.utils.module_loading import import_string

from agents.conf import conf
from agents.models import PaperAccount, PaperFill, PaperPosition, TradeDecision


class LiveTradingNotConfigured(Exception):
    """The cycle runs in live mode but no live executor is configured; nothing was placed."""


@dataclass
class Book:
    cash: float
    exposure: float
    by_market: dict[str, float]

    @property
    def equity(self) -> float:
        return self.cash + self.exposure


class PaperExecutor:
    """Fills approved decisions at the market price against the agent's paper account."""

    name = "paper"

    def __init__(self, *, agent, run, initial_balance: float, now):
        self.agent, self.run, self.now = agent, run, now
        self.account, _created = PaperAccount.objects.get_or_create(
            agent=agent,
            defaults={
                "initial_balance": initial_balance,
                "cash": initial_balance,
                "updated_at": now,
            },
        )

    def book(self) -> Book:
        by_market: dict[str, float] = {}
        rows = (
            PaperPosition.objects.filter(agent=self.agent)
            .values("market_id")
            .annotate(cost=Sum("cost"))
        )
        for row in rows:
            by_market[row["market_id"]] = row["cost"]
        return Book(cash=self.account.cash, exposure=sum(by_market.values()), by_market=by_market)

    @transaction.atomic
    def fill(self, decision: TradeDecision) -> PaperFill:
        market = decision.market
        cost = decision.size
        if cost > self.account.cash:
            raise ValueError(f"paper fill of {cost:.2f} USD exceeds cash {self.account.cash:.2f}")
        shares = round(cost / decision.price, 6)
        fill = PaperFill.objects.create(
            run=self.run,
            agent=self.agent,
            decision=decision,
            market_id=market.market_id,
            side=decision.side,
            price=decision.price,
            shares=shares,
            cost=cost,
            created_at=self.now,
        )
        position, created = PaperPosition.objects.get_or_create(
            agent=self.agent,
            market_id=market.market_id,
            side=decision.side,
            defaults={
                "question": market.question,
                "is_sample": market.is_sample,
                "shares": shares,
                "cost": cost,
                "opened_run": self.run,
                "last_run": self.run,
                "updated_at": self.now,
            },
        )
        if not created:
            position.shares = round(position.shares + shares, 6)
            position.cost = round(position.cost + cost, 2)
            position.last_run = self.run
            position.updated_at = self.now
            position.save(update_fields=["shares", "cost", "last_run", "updated_at"])
        self.account.cash = round(self.account.cash - cost, 2)
        self.account.updated_at = self.now
        self.account.save(update_fields=["cash", "updated_at"])
        return fill


def executor_for(*, trading_mode: str, agent, run, initial_balance: float, now):
    """The executor for this cycle's (already capped) trading mode."""
    if trading_mode != "live":
        return PaperExecutor(agent=agent, run=run, initial_balance=initial_balance, now=now)
    path = conf.FORECASTER_LIVE_EXECUTOR
    if not path:
        raise LiveTradingNotConfigured(
            "This cycle runs in live trading mode, but no live executor is configured "
            "(setting FORECASTER_LIVE_EXECUTOR is empty). Nothing was placed. Set the agent to "
            "dry_run, or configure a live executor."
        )
    return import_string(path)(agent=agent, run=run, initial_balance=initial_balance, now=now)
