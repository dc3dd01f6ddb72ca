"""What an agent used against its budgets in the current budget day. Reads never write.

The runner counts the cycles it started itself. Everything else (LLM tokens by model, the size of
one LLM call, paper exposure, the day's paper loss) comes from the callables named in the
RUNNER_BUDGET_USAGE setting, `f(agent, since, now, wanted) -> dict`, so the runner never imports
an agent's code (the forecaster's is `agents.budgets.budget_usage`). Used by the gate before each
cycle (`runner.services.budgets`), by the cycle's context (what is left), by the status shown in
the admin, the API and the CLI, and by /metrics.
"""

from __future__ import annotations

import logging

from django.db.models import Count
from django.utils import timezone
from django.utils.module_loading import import_string
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from runner.budgets import (
    LIMITS,
    LLM_BUDGETS,
    BudgetAllowance,
    BudgetLine,
    allowance,
    budget_day,
    evaluate,
    llm_cost,
    llm_prices,
    zone_of,
)
from runner.conf import conf
from runner.models import BudgetBreach, CycleRun

logger = logging.getLogger(__name__)


def wanted_usage(budgets: dict) -> set[str]:
    """The usage figures the agent's budgets need (so a hook computes nothing else)."""
    wanted = {LIMITS[name].usage for name in budgets if name in LIMITS}
    if "llm_cost_per_day" in budgets:
        wanted.add("llm_tokens_by_model")
    if not wanted.isdisjoint({"llm_tokens", "llm_cost"}):
        wanted.add("llm_call_tokens")
    return wanted


def agent_usage(agent, budgets: dict, *, since, now) -> dict:
    """{usage name: amount} since the budget day began. Raises what a hook raises."""
    wanted = wanted_usage(budgets)
    usage: dict = {}
    if "cycles" in wanted:
        usage["cycles"] = CycleRun.objects.filter(agent_id=agent.pk, started_at__gte=since).count()
    hook_wants = wanted - {"cycles", "llm_cost"}
    if hook_wants:
        for path in conf.RUNNER_BUDGET_USAGE:
            produced = import_string(path)(agent, since, now, frozenset(hook_wants))
            if not isinstance(produced, dict):
                raise TypeError(f"budget usage hook {path} returned {type(produced).__name__}")
            usage.update(produced)
    if "llm_cost" in wanted:
        prices, fallback = llm_prices(), budgets.get("llm_model")
        usage["llm_cost"] = llm_cost(
            usage.get("llm_tokens_by_model") or {}, prices=prices, fallback_model=fallback
        )
        call = usage.get("llm_call_tokens")
        row = prices.get(fallback or "")
        usage["llm_call_cost"] = call * max(row) / 1000 if call and row else None
    return usage


def budget_lines(agent, *, now=None) -> tuple[list[BudgetLine], dict]:
    """(a line per budget the agent has, the usage read). Raises what a usage hook raises."""
    budgets = agent.budgets or {}
    if not any(name in LIMITS for name in budgets):
        return [], {}
    now = now or timezone.now()
    since, resets_at = budget_day(now, zone_of(budgets))
    usage = agent_usage(agent, budgets, since=since, now=now)
    return evaluate(budgets, usage, resets_at=resets_at), usage


def budget_status(agent, *, now=None) -> list[dict]:
    """Each budget with its limit, what was used, what is left and when it resets (for the
    admin, the API status and the CLI). A failing usage hook shows as `error` on each line."""
    try:
        lines, _usage = budget_lines(agent, now=now)
    except Exception as exc:  # a status read must show the problem, not fail the page
        logger.exception("budget usage of agent %s could not be read", agent.slug)
        error = f"usage could not be read: {type(exc).__name__}: {exc}"
        return [
            {"budget": name, "limit": value, "unit": LIMITS[name].unit, "error": error}
            for name, value in (agent.budgets or {}).items()
            if name in LIMITS
        ]
    return [line.as_dict() for line in lines]


def allowance_for(agent, *, now=None) -> BudgetAllowance | None:
    """What is left for this cycle (CycleContext.budget), or None when the agent has no budgets
    or its usage cannot be read (then the gate let the cycle start, and this is logged)."""
    try:
        lines, usage = budget_lines(agent, now=now)
    except Exception:
        logger.exception("budget usage of agent %s could not be read", agent.slug)
        return None
    return allowance(agent.budgets, lines, usage) if lines else None


def uses_llm_budget(agent) -> bool:
    return any(name in (agent.budgets or {}) for name in LLM_BUDGETS)


def metric_families(agents: dict):
    """/metrics: budget breaches per agent and budget (a counter), and each budget's limit."""
    breaches = CounterMetricFamily(
        "agent_runner_budget_breaches",
        "Budgets found spent before a cycle (each pauses a running agent until the day ends)",
        labels=["agent", "budget"],
    )
    counts = BudgetBreach.objects.values("agent_id", "budget").annotate(n=Count("pk"))
    for row in counts.order_by("agent_id", "budget"):
        agent = agents.get(row["agent_id"])
        if agent is not None:
            breaches.add_metric([agent.slug, row["budget"]], row["n"])
    limits = GaugeMetricFamily(
        "agent_runner_budget_limit",
        "An agent's daily budget (unit: cycles, tokens or USD)",
        labels=["agent", "budget", "unit"],
    )
    for agent in agents.values():
        for name, value in (agent.budgets or {}).items():
            if name in LIMITS:
                limits.add_metric([agent.slug, name, LIMITS[name].unit], float(value))
    yield breaches
    yield limits
