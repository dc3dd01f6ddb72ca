"""The agent page's schedule: the next fire times (UTC and local), and run-once overrides."""

import json

from runner import schedules, services
from runner.errors import InvalidInput
from runner.models import AuditAction

PREVIEW_ON_PAGE = 5


def schedule_panel(agent, *, now) -> dict:
    """What the agent page shows of its schedule: a summary line and the next fire times."""
    if agent.schedule_kind == "cron":
        summary = f"cron “{agent.cron}” in {agent.timezone}"
    else:
        summary = "interval (above)"
    if agent.jitter_seconds:
        summary += f", jitter up to {agent.jitter_seconds} s"
    if agent.active_windows:
        windows = "; ".join(
            f"{','.join(w['days'])} {w['start']}–{w['end']}" for w in agent.active_windows
        )
        summary += f", only {windows} ({agent.timezone})"
    try:
        fire_times = schedules.preview(agent, count=PREVIEW_ON_PAGE, now=now)
    except schedules.ScheduleError as exc:
        return {"summary": summary, "fire_times": [], "error": exc.message}
    return {
        "summary": summary,
        "policies": (
            f"overlap {agent.overlap_policy}, catch-up {agent.catchup_policy}"
            + (f" ({agent.catchup_window_minutes} min)" if agent.catchup_policy == "window" else "")
            + (
                f", {agent.retry_attempts} retries on {agent.retry_on} "
                f"(backoff from {agent.retry_backoff_seconds} s)"
                if agent.retry_attempts
                else ", no retries"
            )
        ),
        "fire_times": fire_times,
        "error": "",
    }


def run_once_parameters(request, agent, *, actor, reason):
    """The Run once button's optional JSON overrides; bad JSON is refused and audited here."""
    text = request.POST.get("parameters", "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        error = InvalidInput(
            'parameters must be a JSON object, e.g. {"min_edge": 0.1}.', field="parameters"
        )
        services.control_refused(
            agent=agent,
            action=AuditAction.RUN_ONCE,
            actor=actor,
            message=error.message,
            reason=reason,
        )
        raise error from None
    return value
