"""The pipeline of the default agent kind `forecaster` (`ForecasterAgent`, one `Cycle` per run):
research -> analyse -> risk -> execute, every step recorded. The forecasters it asks live in
`agents/forecasters.py`.

1. research: load raw markets from the source (`snapshot` SAMPLE data by default, or `gamma`).
2. filter: parse, keep tradeable markets, rank them, and record every market seen.
3. analyse: the forecaster gives the top `markets_per_cycle` markets a probability each.
4. risk + execute: fractional Kelly sizes each forecast against the paper book; approved
   decisions are filled on paper at once, so the next one sees the updated exposure.

`checkpoint()` runs between steps and between markets, so stop and the deadline take effect
promptly. The summary says whether the data was SAMPLE data.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from contextlib import contextmanager

from django.db import transaction

from agents import parameters as params_module
from agents.conf import conf
from agents.forecasters import BaselineForecaster, LLMForecaster
from agents.markets import Market, parse_market, rank, untradeable_reason
from agents.models import Forecast, MarketObservation, TradeDecision
from agents.paper import executor_for
from agents.risk import RiskLimits, size_trade
from agents.sources import GammaSource, LoadedMarkets, SnapshotSource


class StepClock:
    """Milliseconds per named step; a step may be entered many times (risk, execute per market)."""

    def __init__(self):
        self.ms: dict[str, float] = {}

    @contextmanager
    def step(self, name):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - started) * 1000

    def rounded(self):
        return {name: round(ms, 2) for name, ms in self.ms.items()}


def seconds_left(context):
    """Seconds until the cycle's deadline, for HTTP clients that must not outlive it."""
    if context.deadline is None:
        return None
    return lambda: (context.deadline - context.now()).total_seconds()


def http_policy(p: params_module.ForecasterParams, context) -> dict:
    """Timeout, retries and deadline: one policy for every HTTP client a cycle uses."""
    return {
        "timeout_seconds": p.request_timeout_seconds,
        "max_retries": p.max_retries,
        "backoff_seconds": p.retry_backoff_seconds,
        "time_left": seconds_left(context),
    }


def build_source(p: params_module.ForecasterParams, context):
    if p.source == "snapshot":
        return SnapshotSource()
    return GammaSource(
        base_url=conf.GAMMA_BASE_URL,
        page_size=p.gamma_page_size,
        max_pages=p.gamma_max_pages,
        checkpoint=context.checkpoint,
        **http_policy(p, context),
    )


def build_forecaster(p: params_module.ForecasterParams, context):
    if p.forecaster == "baseline":
        return BaselineForecaster()
    return LLMForecaster(
        base_url=conf.LLM_BASE_URL,
        api_key=conf.LLM_API_KEY,
        model=conf.LLM_MODEL,
        **http_policy(p, context),
    )


def _reason_category(reason: str) -> str:
    return re.split(r"[\d(:]", reason, maxsplit=1)[0].strip()


class ForecasterAgent:
    """The prediction-market forecaster (DESIGN §7), dry-run unless a live executor exists."""

    @classmethod
    def validate_parameters(cls, parameters):
        return params_module.validate_parameters(parameters)

    def run(self, context) -> dict:
        return Cycle(context).run()


class Cycle:
    """One run of the pipeline; each step is a method, timed and logged, with checkpoints between."""

    def __init__(self, context):
        self.context = context
        self.p = params_module.resolve(context.parameters)
        self.log = context.logger
        self.run_record = context.extra["run"]
        self.agent = self.run_record.agent
        self.now = context.now()
        self.clock = StepClock()
        # What is left of the agent's daily budgets (runner.budgets.BudgetAllowance) or None.
        self.budget = getattr(context, "budget", None)

    def run(self) -> dict:
        # Refuse live mode without an executor before touching a single market.
        self.executor = executor_for(
            trading_mode=self.context.trading_mode,
            agent=self.agent,
            run=self.run_record,
            initial_balance=self.p.initial_paper_balance,
            now=self.now,
        )
        loaded = self.research()
        self.context.checkpoint()
        markets, tradeable, observation_of = self.filter(loaded)
        self.context.checkpoint()
        analysed = tradeable[: self.p.markets_per_cycle]
        forecasts, tokens = self.analyse(analysed, observation_of)
        self.context.checkpoint()
        approved, rejected, fills = self.trade(forecasts)
        book = self.executor.book()
        self.log.info(
            "execute: %d fills (%s); paper exposure %.2f USD, cash %.2f USD; %.1f ms",
            fills,
            self.executor.name,
            book.exposure,
            book.cash,
            self.clock.ms["execute"],
        )
        if not fills:
            self.log.info("no trade this cycle")
        failed = sum(1 for f, _m in forecasts if f.status == Forecast.Status.FAILED)
        summary = {
            "source": loaded.source,
            "sample_data": loaded.sample_data,
            "forecaster": self.p.forecaster,
            "trading_mode": self.context.trading_mode,
            "executor": self.executor.name,
            "markets_loaded": len(markets),
            "markets_tradeable": len(tradeable),
            "markets_analysed": len(forecasts),
            "forecasts": len(forecasts) - failed,
            "forecasts_failed": failed,
            "decisions_approved": approved,
            "decisions_rejected": rejected,
            "paper_fills": fills,
            "paper_exposure": round(book.exposure, 2),
            "paper_cash": round(book.cash, 2),
            "paper_equity": round(book.equity, 2),
            "outcome": "traded" if fills else "no trade",
            "step_ms": self.clock.rounded(),
            "parameters": self.p.as_dict(),
        }
        if loaded.sample_data:
            summary["data_notice"] = loaded.notice
        if self.p.forecaster == "llm":
            summary["llm_total_tokens"] = tokens
        if self.budget is not None and self.budget.stopped_by:
            summary["budget_stopped"] = list(self.budget.stopped_by)
        return summary

    def research(self) -> LoadedMarkets:
        with self.clock.step("research"):
            loaded = build_source(self.p, self.context).load()
        label = f" ({loaded.notice})" if loaded.sample_data else " (live data)"
        self.log.info(
            "research: loaded %d markets from %s%s; %.1f ms",
            len(loaded.raw_markets),
            loaded.source,
            label,
            self.clock.ms["research"],
        )
        return loaded

    def filter(self, loaded: LoadedMarkets):
        """Parse, filter and rank; record every market seen (one bulk insert)."""
        with self.clock.step("filter"):
            markets = [parse_market(raw) for raw in loaded.raw_markets]
            reasons = [
                untradeable_reason(m, now=self.now, min_liquidity=self.p.min_liquidity)
                for m in markets
            ]
            tradeable = rank([m for m, why in zip(markets, reasons, strict=True) if not why])
            ranks = {id(m): i for i, m in enumerate(tradeable, start=1)}
            observations = MarketObservation.objects.bulk_create(
                [
                    MarketObservation(
                        run=self.run_record,
                        agent=self.agent,
                        source=loaded.source,
                        is_sample=loaded.sample_data,
                        captured_at=self.now,
                        market_id=m.market_id[:100],
                        question=m.question,
                        slug=m.slug[:300],
                        end_date=m.end_date,
                        yes_price=m.yes_price,
                        no_price=m.no_price,
                        liquidity=m.liquidity,
                        volume=m.volume,
                        tradeable=not why,
                        untradeable_reason=why[:300],
                        rank=ranks.get(id(m)),
                    )
                    for m, why in zip(markets, reasons, strict=True)
                ]
            )
            observation_of = {id(m): o for m, o in zip(markets, observations, strict=True)}
        skipped = Counter(_reason_category(why) for why in reasons if why)
        self.log.info(
            "filter: %d of %d markets tradeable (min_liquidity %.0f); not tradeable: %s; %.1f ms",
            len(tradeable),
            len(markets),
            self.p.min_liquidity,
            dict(skipped) or "none",
            self.clock.ms["filter"],
        )
        return markets, tradeable, observation_of

    def analyse(self, analysed: list[Market], observation_of):
        """One forecast per market. Written in one batch at the end, also when the cycle is
        stopped part-way, so the answers already paid for are kept."""
        forecaster = build_forecaster(self.p, self.context)
        forecasts: list[tuple[Forecast, Market]] = []
        tokens = 0
        try:
            for done, market in enumerate(analysed):
                self.context.checkpoint()
                if self._llm_budget_stops(forecaster, left=len(analysed) - done):
                    break
                with self.clock.step("analyse"):
                    result = forecaster.forecast(market, now=self.context.now())
                tokens += result.total_tokens or 0
                self._spent_on_llm(result)
                if not result.ok:
                    self.log.warning(
                        "analyse: market %s: forecast failed: %s", market.market_id, result.error
                    )
                forecasts.append((self._forecast_record(result, market, observation_of), market))
        finally:
            if hasattr(forecaster, "close"):
                forecaster.close()
            with self.clock.step("analyse"):
                Forecast.objects.bulk_create([f for f, _m in forecasts])
        failed = sum(1 for f, _m in forecasts if f.status == Forecast.Status.FAILED)
        self.log.info(
            "analyse: %d markets with the %s forecaster, %d failed; %.1f ms",
            len(analysed),
            self.p.forecaster,
            failed,
            self.clock.ms.get("analyse", 0.0),
        )
        return forecasts, tokens

    def _llm_budget_stops(self, forecaster, *, left) -> bool:
        """Before an LLM call: True (and logged) when the call would cross a budget."""
        if self.budget is None or not isinstance(forecaster, LLMForecaster):
            return False
        crossed = self.budget.llm_call_blocked(forecaster.model)
        if crossed:
            self.log.warning(
                "analyse: budget %s would be crossed by the next LLM call; %d market(s) not "
                "analysed this cycle",
                crossed,
                left,
            )
        return bool(crossed)

    def _spent_on_llm(self, result) -> None:
        if self.budget is not None and result.total_tokens is not None:
            self.budget.spend_llm(
                result.model,
                prompt=result.prompt_tokens or 0,
                completion=result.completion_tokens or 0,
                total=result.total_tokens,
            )

    def _budget_caps(self) -> dict[str, float]:
        """The room a budget leaves for new positions, as a risk cap ({} when none applies)."""
        room = self.budget.paper_room() if self.budget is not None else None
        return {room[0]: room[1]} if room else {}

    def _note_budget_rejection(self, reason: str) -> None:
        for cap in self._budget_caps():
            if reason.startswith(cap):
                self.budget.note_stop(cap.split()[0])

    def _forecast_record(self, result, market: Market, observation_of) -> Forecast:
        return Forecast(
            run=self.run_record,
            agent=self.agent,
            market=observation_of[id(market)],
            forecaster=result.forecaster,
            model=result.model,
            status=Forecast.Status.OK if result.ok else Forecast.Status.FAILED,
            probability=result.probability if result.ok else None,
            confidence=result.confidence if result.ok else None,
            reasoning=result.reasoning if result.ok else "",
            error=result.error,
            market_price=market.yes_price,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            total_tokens=result.total_tokens,
            attempts=result.attempts,
            latency_ms=result.latency_ms,
            created_at=self.context.now(),
        )

    @transaction.atomic
    def trade(self, forecasts):
        """Risk then execute, market by market, so each sizing sees the fills before it. One
        transaction: a cycle's decisions and fills land in the paper book together or not at all."""
        limits = RiskLimits(
            kelly_fraction=self.p.kelly_fraction,
            min_edge=self.p.min_edge,
            max_position_fraction=self.p.max_position_fraction,
            max_exposure_fraction=self.p.max_exposure_fraction,
        )
        self.clock.ms.setdefault("risk", 0.0)
        self.clock.ms.setdefault("execute", 0.0)
        approved = rejected = fills = 0
        reasons: Counter = Counter()
        for forecast, market in forecasts:
            if forecast.status != Forecast.Status.OK:
                continue
            self.context.checkpoint()
            with self.clock.step("risk"):
                book = self.executor.book()
                sizing = size_trade(
                    probability=forecast.probability,
                    price=market.yes_price,
                    limits=limits,
                    equity=book.equity,
                    exposure=book.exposure,
                    position_exposure=book.by_market.get(market.market_id, 0.0),
                    cash=book.cash,
                    caps=self._budget_caps(),
                )
                decision = TradeDecision.objects.create(
                    run=self.run_record,
                    agent=self.agent,
                    forecast=forecast,
                    market=forecast.market,
                    approved=sizing.approved,
                    side=sizing.side,
                    edge=sizing.edge,
                    kelly=sizing.kelly,
                    size=sizing.size,
                    price=sizing.price,
                    reason=sizing.reason[:300],
                    created_at=self.context.now(),
                )
            if not sizing.approved:
                self._note_budget_rejection(sizing.reason)
                rejected += 1
                reasons[sizing.reason.split(":")[0]] += 1
                continue
            approved += 1
            with self.clock.step("execute"):
                self.executor.fill(decision)
                fills += 1
            if self.budget is not None:
                self.budget.spend_paper(sizing.size)
            self.log.info(
                "execute: %s fill %s %.2f USD at %.4f on market %s",
                self.executor.name,
                sizing.side,
                sizing.size,
                sizing.price,
                market.market_id,
            )
        self.log.info(
            "risk: %d approved, %d rejected (%s); %.1f ms",
            approved,
            rejected,
            dict(reasons) or "none",
            self.clock.ms["risk"],
        )
        return approved, rejected, fills
