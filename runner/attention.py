"""Which agents need an operator's attention, and why: the one rule every page that asks uses.

An agent needs attention when it is in `error` (tripped by its circuit breaker, or unloadable),
overdue (running, but its next cycle is past RUNNER_OVERDUE_GRACE_SECONDS late: see
runner.alerts.overdue_agents), or has another alert open (a run abandoned by its worker). A new
condition (say, paused by a budget) is one more `if` in `concerns()` and one more Concern.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.models import AgentState, AlertKind


@dataclass(frozen=True)
class Concern:
    code: str
    label: str
    rank: int  # lower is more urgent: the overview lists agents by their most urgent concern


TRIPPED = Concern("error", "in error (tripped)", 0)
OVERDUE = Concern("overdue", "overdue", 1)
# Open alerts the two concerns above do not already say.
ALERTS = {
    AlertKind.RUN_ABANDONED: Concern("alert", "run abandoned", 2),
    # Open while the budget's day lasts and the agent does not run (runner.services.budgets).
    AlertKind.BUDGET_EXCEEDED: Concern("budget", "budget spent", 2),
}


def concerns(agent, *, overdue: bool, open_alert_kinds=()) -> list[Concern]:
    """Why this agent needs attention, most urgent first (empty when it does not)."""
    found = []
    if agent.state == AgentState.ERROR:
        found.append(TRIPPED)
    if overdue:
        found.append(OVERDUE)
    found += [ALERTS[kind] for kind in sorted(set(open_alert_kinds)) if kind in ALERTS]
    return sorted(found, key=lambda concern: concern.rank)


def urgency(found: list[Concern]) -> int:
    """The sort key of an agent's concerns: its most urgent one, and agents without any last."""
    return found[0].rank if found else len(ALERTS) + 2
