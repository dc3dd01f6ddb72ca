"""Budgets: what an agent may spend in a day, how a budget is written, and what is left of it.

An agent's `budgets` (part of its configuration, versioned and audited like any change) is a
JSON object; every key is optional and `{}` means no budget:

  cycles_per_day       cycles started in the budget day
  llm_tokens_per_day   LLM tokens (prompt and completion) in the budget day
  llm_cost_per_day     estimated LLM cost in USD, priced per model from RUNNER_LLM_PRICES
  llm_model            the price row for tokens of a model that has no row of its own
                       (required with llm_cost_per_day)
  paper_exposure       ceiling on open paper positions, USD at cost
  paper_loss_per_day   paper loss in the budget day, USD (positions marked at the latest price)
  timezone             IANA zone whose midnight ends the budget day (RUNNER_BUDGET_TIMEZONE)

This module is pure: parsing, the day window and the arithmetic of what is left. What an agent
used is read by `runner.budget_usage`; the gate that pauses an agent is `runner.services.budgets`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError

from runner.conf import conf


@dataclass(frozen=True)
class Limit:
    """One kind of budget: its unit, its allowed range and the usage figure it is held against."""

    name: str
    unit: str
    whole: bool
    low: float
    high: float
    usage: str
    help: str

    def allowed(self) -> str:
        what = "a whole number" if self.whole else "a number"
        return f"{what} from {self.low:g} to {self.high:g} ({self.unit})"


LIMITS = {
    limit.name: limit
    for limit in (
        Limit("cycles_per_day", "cycles", True, 1, 1_000_000, "cycles", "Cycles started per day."),
        Limit("llm_tokens_per_day", "tokens", True, 1, 1e12, "llm_tokens", "LLM tokens per day."),
        Limit(
            "llm_cost_per_day", "USD", False, 0.01, 1e9, "llm_cost", "Estimated LLM USD per day."
        ),
        Limit("paper_exposure", "USD", False, 0, 1e12, "paper_exposure", "Open paper cost, USD."),
        Limit("paper_loss_per_day", "USD", False, 0.01, 1e12, "paper_loss", "Paper loss per day."),
    )
}
OPTIONS = ("llm_model", "timezone")
LLM_BUDGETS = ("llm_tokens_per_day", "llm_cost_per_day")


def budgets_help() -> str:
    """What the budgets field takes, for forms and docs."""
    limits = "; ".join(f"{limit.name}: {limit.allowed()}" for limit in LIMITS.values())
    return (
        f'A JSON object, e.g. {{"cycles_per_day": 48, "llm_tokens_per_day": 200000}}. Keys: '
        f"{limits}; llm_model: the RUNNER_LLM_PRICES row for tokens of an unpriced model "
        "(needed with llm_cost_per_day); timezone: whose midnight ends the day "
        f"(default {conf.RUNNER_BUDGET_TIMEZONE})."
    )


@lru_cache(maxsize=1)
def _zones() -> frozenset:
    return frozenset(available_timezones()) | {"UTC"}


def llm_prices() -> dict:
    """RUNNER_LLM_PRICES as {model: (prompt, completion)} USD per 1,000 tokens (valid rows only)."""
    prices = {}
    setting = conf.RUNNER_LLM_PRICES
    for model, row in setting.items() if isinstance(setting, dict) else ():
        if not isinstance(row, dict):
            continue
        prompt, completion = row.get("prompt"), row.get("completion")
        if all(_is_number(v) and v >= 0 for v in (prompt, completion)):
            prices[str(model)] = (float(prompt), float(completion))
    return prices


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _parse_limit(limit: Limit, value):
    message = f"{limit.name} must be {limit.allowed()}; got {value!r}."
    if not _is_number(value) or (limit.whole and not float(value).is_integer()):
        raise ValueError(message)
    if not limit.low <= value <= limit.high:
        raise ValueError(message)
    return int(value) if limit.whole else float(value)


def parse_budgets(value) -> dict:
    """An agent's budgets, normalised; ValidationError({"budgets": [...]}) naming each bad key."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError({"budgets": ["budgets must be a JSON object (or {} for none)."]})
    errors, cleaned = [], {}
    for key in sorted(value, key=str):
        item = value[key]
        try:
            if key in LIMITS:
                cleaned[key] = _parse_limit(LIMITS[key], item)
            elif key == "timezone":
                if not isinstance(item, str) or item not in _zones():
                    raise ValueError(
                        f"timezone must be an IANA time zone such as UTC or Europe/Paris; "
                        f"got {item!r}."
                    )
                cleaned[key] = item
            elif key == "llm_model":
                cleaned[key] = _parse_model(item)
            else:
                allowed = ", ".join([*LIMITS, *OPTIONS])
                raise ValueError(f"Unknown budget {key!r}; allowed keys: {allowed}.")
        except ValueError as exc:
            errors.append(str(exc))
    if "llm_cost_per_day" in cleaned and "llm_model" not in cleaned and not errors:
        errors.append(
            "llm_cost_per_day needs llm_model: the model whose RUNNER_LLM_PRICES row prices "
            "tokens of a model without a row of its own."
        )
    if errors:
        raise ValidationError({"budgets": errors})
    return cleaned


def _parse_model(value) -> str:
    priced = sorted(llm_prices())
    if isinstance(value, str) and value in priced:
        return value
    known = ", ".join(priced) if priced else "none: RUNNER_LLM_PRICES is empty"
    raise ValueError(
        f"llm_model must be a model priced in RUNNER_LLM_PRICES ({known}); got {value!r}."
    )


def budget_day(now: datetime, zone_name: str) -> tuple[datetime, datetime]:
    """[start, end) of the budget day holding `now`, in UTC: midnight to midnight in the zone."""
    zone = ZoneInfo(zone_name)
    local_day = now.astimezone(zone).date()
    start = datetime.combine(local_day, time.min, tzinfo=zone)
    end = datetime.combine(local_day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def zone_of(budgets: dict) -> str:
    return budgets.get("timezone") or conf.RUNNER_BUDGET_TIMEZONE


def llm_cost(tokens_by_model: dict, *, prices: dict, fallback_model: str | None) -> float:
    """USD for {model: {"prompt", "completion", "total"}} tokens. Tokens reported only as a
    total are priced at the dearer of the two rates; a model without a row at `fallback_model`'s."""
    cost = 0.0
    for model, tokens in tokens_by_model.items():
        row = prices.get(model) or prices.get(fallback_model or "")
        if row is None:
            continue
        prompt, completion = tokens.get("prompt", 0), tokens.get("completion", 0)
        unsplit = max(tokens.get("total", 0) - prompt - completion, 0)
        cost += (prompt * row[0] + completion * row[1] + unsplit * max(row)) / 1000
    return cost


@dataclass(frozen=True)
class BudgetLine:
    """One budget against its usage in the current budget day."""

    budget: str
    unit: str
    limit: float
    used: float
    next_step: float | None  # the size of the next spend, when known (one LLM call)
    resets_at: datetime

    @property
    def left(self) -> float:
        return max(self.limit - self.used, 0)

    @property
    def exhausted(self) -> bool:
        """Spent, or the next known step would cross it."""
        if self.used >= self.limit:
            return True
        return self.next_step is not None and self.used + self.next_step > self.limit

    def describe(self) -> str:
        text = f"{self.budget}: limit {_amount(self.limit, self.unit)}, used {_amount(self.used, self.unit)}"
        if self.used < self.limit and self.exhausted:
            text += (
                f"; the next LLM call (about {_amount(self.next_step, self.unit)}) would cross it"
            )
        return text

    def as_dict(self) -> dict:
        return {
            "budget": self.budget,
            "unit": self.unit,
            "limit": self.limit,
            "used": round(self.used, 4),
            "left": round(self.left, 4),
            "exhausted": self.exhausted,
            "resets_at": self.resets_at,
        }


def budget_text(line: dict) -> str:
    """One budget of a status (BudgetLine.as_dict) on one line, for the CLI."""
    name, unit = line["budget"], line["unit"]
    if "error" in line:
        return f"{name}: limit {_amount(line['limit'], unit)}; {line['error']}"
    spent = " SPENT: no cycle runs until it resets" if line["exhausted"] else ""
    return (
        f"{name}: {_amount(line['used'], unit)} of {_amount(line['limit'], unit)} used, "
        f"{_amount(line['left'], unit)} left; resets {line['resets_at'].isoformat()}{spent}"
    )


def _amount(value, unit) -> str:
    if unit == "USD":
        return f"{value:,.2f} USD"
    return f"{value:,.0f} {unit}"


def evaluate(budgets: dict, usage: dict, *, resets_at: datetime) -> list[BudgetLine]:
    """A line per budget the agent has, against `usage` ({usage name: amount}, and
    `llm_call_tokens` / `llm_call_cost` for the size of the next LLM call)."""
    next_steps = {
        "llm_tokens_per_day": usage.get("llm_call_tokens"),
        "llm_cost_per_day": usage.get("llm_call_cost"),
    }
    return [
        BudgetLine(
            budget=name,
            unit=limit.unit,
            limit=budgets[name],
            used=float(usage.get(limit.usage) or 0),
            next_step=next_steps.get(name),
            resets_at=resets_at,
        )
        for name, limit in LIMITS.items()
        if name in budgets
    ]


@dataclass
class BudgetAllowance:
    """What is left of an agent's budgets for one cycle (CycleContext.budget).

    The agent asks before it spends (`llm_call_blocked`, `paper_room`) and says what it spent
    (`spend_llm`, `spend_paper`), so a budget is not crossed in the middle of a cycle. `None`
    means that budget is not set. `stopped_by` names the budgets that stopped something.
    """

    llm_tokens_left: float | None = None
    llm_cost_left: float | None = None
    paper_exposure_left: float | None = None
    paper_loss_left: float | None = None
    llm_call_tokens: float | None = None
    prices: dict = field(default_factory=dict)
    fallback_model: str | None = None
    stopped_by: list = field(default_factory=list)

    def _call_cost(self, model, tokens) -> float:
        row = self.prices.get(model) or self.prices.get(self.fallback_model or "") or (0.0, 0.0)
        return tokens * max(row) / 1000

    def llm_call_blocked(self, model: str) -> str | None:
        """The budget the next LLM call would cross (its size estimated from the largest call
        seen), or None. Without an estimate a call goes ahead while anything is left."""
        estimate = self.llm_call_tokens or 1
        if self.llm_tokens_left is not None and estimate > self.llm_tokens_left:
            return self.note_stop("llm_tokens_per_day")
        cost_left = self.llm_cost_left
        if cost_left is not None and (
            cost_left <= 0 or self._call_cost(model, estimate) > cost_left
        ):
            return self.note_stop("llm_cost_per_day")
        return None

    def spend_llm(self, model: str, *, prompt: int, completion: int, total: int) -> None:
        total = total or (prompt + completion)
        self.llm_call_tokens = max(self.llm_call_tokens or 0, total)
        if self.llm_tokens_left is not None:
            self.llm_tokens_left -= total
        if self.llm_cost_left is not None:
            tokens = {model: {"prompt": prompt, "completion": completion, "total": total}}
            self.llm_cost_left -= llm_cost(
                tokens, prices=self.prices, fallback_model=self.fallback_model
            )

    def paper_room(self) -> tuple[str, float] | None:
        """(cap name, USD that new positions may still cost), or None when no budget caps them."""
        if self.paper_loss_left is not None and self.paper_loss_left <= 0:
            return "paper_loss_per_day budget", 0.0
        if self.paper_exposure_left is not None:
            return "paper_exposure budget", max(self.paper_exposure_left, 0.0)
        return None

    def spend_paper(self, usd: float) -> None:
        if self.paper_exposure_left is not None:
            self.paper_exposure_left -= usd

    def note_stop(self, budget):
        """Remember that `budget` stopped something this cycle (the summary says so)."""
        if budget not in self.stopped_by:
            self.stopped_by.append(budget)
        return budget


def allowance(budgets: dict, lines: list[BudgetLine], usage: dict) -> BudgetAllowance:
    left = {line.budget: line.limit - line.used for line in lines}
    return BudgetAllowance(
        llm_tokens_left=left.get("llm_tokens_per_day"),
        llm_cost_left=left.get("llm_cost_per_day"),
        paper_exposure_left=left.get("paper_exposure"),
        paper_loss_left=left.get("paper_loss_per_day"),
        llm_call_tokens=usage.get("llm_call_tokens"),
        prices=llm_prices(),
        fallback_model=budgets.get("llm_model"),
    )
