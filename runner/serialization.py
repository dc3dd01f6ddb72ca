"""Plain-dict views of runner records, for the CLI's --json and anything else printing them."""

from runner.models import Agent


def agent_as_dict(agent) -> dict:
    """The agent's configuration and runner state, with the API's field names."""
    return {
        "slug": agent.slug,
        **{name: getattr(agent, name) for name in Agent.CONFIG_FIELDS},
        **{name: getattr(agent, name) for name in Agent.STATE_FIELDS},
    }


def run_as_dict(run) -> dict:
    return {
        "id": run.pk,
        "agent": run.agent.slug,
        "status": run.status,
        "trigger": run.trigger,
        "slot": run.slot,
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "worker": run.worker,
        "trading_mode": run.trading_mode,
        "summary": run.summary,
        "error": (
            {"type": run.error_type, "message": run.error_message}
            if run.error_type or run.error_message
            else None
        ),
    }
