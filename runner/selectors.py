"""Reads of runner state for every interface (status for API, admin, CLI)."""

from runner import services
from runner.errors import AgentNotFound
from runner.models import Agent, AgentState, CycleRun


def agent_get(slug) -> Agent:
    try:
        return Agent.objects.get(slug=slug)
    except Agent.DoesNotExist:
        raise AgentNotFound(f"No agent with slug {slug!r}") from None


STATUS_FIELDS = (
    "state",
    "interval_minutes",
    "next_run",
    "last_run",
    "last_success",
    "last_error",
    "run_count",
    "success_count",
    "error_count",
    "consecutive_failures",
)


def agent_status(agent: Agent) -> dict:
    """The agent's state and counters, after settling any run whose lease has expired."""
    if services.runs_reap_expired(agent_id=agent.pk):
        agent.refresh_from_db()
    status = {"agent": agent.slug, **{name: getattr(agent, name) for name in STATUS_FIELDS}}
    status["running"] = agent.state == AgentState.RUNNING
    current = CycleRun.objects.filter(agent=agent, status="running").values_list("pk", flat=True)
    status["current_run"] = next(iter(current), None)
    return status
