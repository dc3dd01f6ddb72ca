"""The runner's vocabulary: states, statuses, triggers, audit actions and configuration bounds.

Kept apart from the models so validation, services and interfaces can share them without
importing the models module (and the models can import validation without a cycle).
"""

from django.db import models


class AgentState(models.TextChoices):
    STOPPED = "stopped", "Stopped"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    ERROR = "error", "Error"


class TradingMode(models.TextChoices):
    DRY_RUN = "dry_run", "Dry run (paper)"
    LIVE = "live", "Live"


INTERVAL_MIN, INTERVAL_MAX = 1, 10080
TIMEOUT_MIN, TIMEOUT_MAX = 1, 3600
MAX_FAILURES_MIN, MAX_FAILURES_MAX = 1, 1000


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    CANCELLED = "cancelled", "Cancelled"
    ABANDONED = "abandoned", "Abandoned"
    SKIPPED = "skipped", "Skipped"


FINISHED_STATUSES = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.TIMED_OUT,
    RunStatus.CANCELLED,
    RunStatus.ABANDONED,
)
FAILURE_STATUSES = (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.ABANDONED)


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual"
    CLI = "cli", "Command line"
    BACKFILL = "backfill", "Backfill"


class AuditAction(models.TextChoices):
    START = "start", "Start"
    STOP = "stop", "Stop"
    PAUSE = "pause", "Pause"
    RESUME = "resume", "Resume"
    RUN_ONCE = "run_once", "Run once"
    SET_INTERVAL = "set_interval", "Set interval"
    CONFIGURE = "configure", "Configure"
    CREATE = "create", "Create"
    DELETE = "delete", "Delete"
    TRIP = "trip", "Trip (circuit breaker)"
    BACKFILL = "backfill", "Backfill"
    RESTORE = "restore_version", "Restore a configuration version"


class AuditOutcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    REFUSED = "refused", "Refused"


class AuditSource(models.TextChoices):
    ADMIN = "admin", "Admin"
    API = "api", "API"
    CLI = "cli", "Command line"
    SCHEDULER = "scheduler", "Scheduler"
    SYSTEM = "system", "System"


class AlertKind(models.TextChoices):
    AGENT_ERROR = "agent_error", "Agent tripped to error"
    RUN_ABANDONED = "run_abandoned", "Run abandoned"
    AGENT_OVERDUE = "agent_overdue", "Agent overdue"
    BUDGET_EXCEEDED = "budget_exceeded", "Budget exceeded"


# --- calendar schedules and run policies (runner/schedules.py, runner/policy_rules.py) ---------


class ScheduleKind(models.TextChoices):
    INTERVAL = "interval", "Every N minutes"
    CRON = "cron", "Cron expression in the agent's time zone"


class OverlapPolicy(models.TextChoices):
    SKIP = "skip", "Skip the slot"
    BUFFER_ONE = "buffer_one", "Run once right after the current run"
    CANCEL_PREVIOUS = "cancel_previous", "Stop the current run, then start"


class CatchupPolicy(models.TextChoices):
    LATEST = "latest", "Run once, count the missed slots"
    WINDOW = "window", "Run each missed slot within the window, oldest first"


RETRYABLE_STATUSES = ("failed", "timed_out", "abandoned")
JITTER_MAX = 3600
CATCHUP_WINDOW_MIN, CATCHUP_WINDOW_MAX = 1, 10080
RETRY_ATTEMPTS_MAX = 10
RETRY_BACKOFF_MIN, RETRY_BACKOFF_MAX = 1, 3600
