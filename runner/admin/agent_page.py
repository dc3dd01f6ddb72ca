"""What the agent page shows above and below its form: state, timings, counters, the controls
that apply right now, and the latest runs and audit events."""

from dataclasses import dataclass

from django.urls import reverse
from django.utils import timezone

from runner import selectors, services
from runner.admin import live
from runner.admin.agent_schedule import schedule_panel
from runner.admin.display import (
    VERSIONS_URL_NAME,
    agent_page_url,
    badge,
    changes_html,
    moment_html,
    run_status_badge,
)
from runner.admin.runs import RUN_HEAVY_FIELDS
from runner.models import INTERVAL_MAX, INTERVAL_MIN, AuditAction, AuditEvent, CycleRun

# How many runs and audit events the agent page lists.
RECENT_ON_PAGE = 10
REPORT_URL_NAMES = ("runner-agent-report", "admin:runner-agent-report")


@dataclass(frozen=True)
class Control:
    """A control button: its verb (as services name it), label and the word for "done"."""

    verb: str
    label: str
    done: str
    audit_action: str


CONTROLS = {
    "start": Control("start", "Start", "started", AuditAction.START),
    "stop": Control("stop", "Stop", "stopped", AuditAction.STOP),
    "pause": Control("pause", "Pause", "paused", AuditAction.PAUSE),
    "resume": Control("resume", "Resume", "resumed", AuditAction.RESUME),
    "run_once": Control("run_once", "Run once", "queued a run", AuditAction.RUN_ONCE),
    "set_interval": Control("set_interval", "Set interval", "re-timed", AuditAction.SET_INTERVAL),
}


def report_url(agent):
    """The agent's report page, when the reports app provides one."""
    return agent_page_url(agent.pk, *REPORT_URL_NAMES)


def versions_url(agent):
    """The agent's configuration versions page, when the URLs wire it (config/urls.py)."""
    return agent_page_url(agent.pk, VERSIONS_URL_NAME)


def control_room(agent, *, can_control) -> dict:
    """The template context of the agent page's runner panel (see agent/change_form.html)."""
    now = timezone.now()
    status = selectors.agent_status(agent)
    in_flight = services.cycle_in_flight(agent, now=now)
    last_run = (
        CycleRun.objects.filter(agent=agent, started_at=agent.last_run)
        .defer(*RUN_HEAVY_FIELDS)
        .order_by("-id")
        .first()
        if agent.last_run
        else None
    )
    recent_runs = list(
        CycleRun.objects.filter(agent=agent)
        .defer(*RUN_HEAVY_FIELDS)
        .select_related("requested_by")
        .order_by("-queued_at", "-id")[:RECENT_ON_PAGE]
    )
    recent_events = list(AuditEvent.objects.filter(agent_id=agent.pk)[:RECENT_ON_PAGE])
    controls = services.allowed_controls(agent, now=now) if can_control else []
    return {
        "status": status,
        "state_badge": badge(agent.state, agent.get_state_display(), "state"),
        "next_run": moment_html(agent.next_run, now),
        "paused_next_run": moment_html(agent.paused_next_run, now)
        if agent.paused_next_run
        else None,
        "last_run": moment_html(agent.last_run, now),
        "last_run_record": last_run,
        "last_run_badge": run_status_badge(last_run.status) if last_run else "—",
        "last_success": moment_html(agent.last_success, now),
        "paused_until": moment_html(agent.paused_until, now) if agent.paused_until else None,
        "can_pause": "pause" in controls,
        "can_run_once": "run_once" in controls,
        "in_flight": in_flight,
        "in_flight_live": live.in_flight(in_flight, now),
        "can_control": can_control,
        "controls": [CONTROLS[verb] for verb in controls],
        "interval_min": INTERVAL_MIN,
        "interval_max": INTERVAL_MAX,
        "recent_runs": [
            {
                "run": run,
                "badge": run_status_badge(run.status),
                "when": moment_html(run.started_at or run.queued_at, now),
            }
            for run in recent_runs
        ],
        "recent_events": [
            {
                "event": event,
                "badge": badge(event.outcome, event.get_outcome_display(), "outcome"),
                "changes": changes_html(event.changes, limit=60),
                "when": moment_html(event.created_at, now),
            }
            for event in recent_events
        ],
        "runs_url": reverse("admin:runner_cyclerun_changelist") + f"?agent__id__exact={agent.pk}",
        "events_url": reverse("admin:runner_auditevent_changelist")
        + f"?agent__id__exact={agent.pk}",
        "report_url": report_url(agent),
        "schedule": schedule_panel(agent, now=now),
        "versions_url": versions_url(agent),
        "budgets": [budget_row(line) for line in status["budgets"]],
    }


def budget_row(line: dict) -> dict:
    """A budget of the status as the agent page shows it: amounts and a percentage used."""
    if "error" in line:
        return {**line, "percent": None}
    percent = min(round(100 * line["used"] / line["limit"]), 100) if line["limit"] else 100
    return {**line, "percent": percent}
