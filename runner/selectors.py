"""Reads of runner state for every interface (status for API, admin, CLI). Reads never write."""

from runner.budget_usage import budget_status
from runner.errors import AgentNotFound
from runner.models import Agent, AgentState, CycleRun, RunStatus


def agent_get(slug) -> Agent:
    try:
        return Agent.objects.get(slug=slug)
    except Agent.DoesNotExist:
        raise AgentNotFound(f"No agent with slug {slug!r}") from None


STATUS_FIELDS = ("interval_minutes", *Agent.STATE_FIELDS)


def agent_status(agent: Agent) -> dict:
    """The agent's state, counters, the id of the cycle running now and its budgets' usage.

    A run whose worker died stays `running` here until the next claim or the periodic reaper
    settles it (within a minute); this read never does it itself.
    """
    status = {"agent": agent.slug, **{name: getattr(agent, name) for name in STATUS_FIELDS}}
    status["running"] = agent.state == AgentState.RUNNING
    current = CycleRun.objects.filter(agent=agent, status=RunStatus.RUNNING).values_list(
        "pk", flat=True
    )
    status["current_run"] = next(iter(current), None)
    status["budgets"] = budget_status(agent)
    return status
