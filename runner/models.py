"""Runner data: agent configuration and state, one row per cycle, and the append-only audit trail.

Invariants that must hold against concurrent writers live in the database (check constraints,
partial unique indexes), not in `save()`, because services write with conditional `update()`s.
Only `runner.services` writes these tables.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from runner.choices import (  # noqa: F401 (re-exported: callers import them from here too)
    FAILURE_STATUSES,
    FINISHED_STATUSES,
    INTERVAL_MAX,
    INTERVAL_MIN,
    JITTER_MAX,
    MAX_FAILURES_MAX,
    MAX_FAILURES_MIN,
    RETRY_ATTEMPTS_MAX,
    TIMEOUT_MAX,
    TIMEOUT_MIN,
    AgentState,
    AlertKind,
    AuditAction,
    AuditOutcome,
    AuditSource,
    CatchupPolicy,
    OverlapPolicy,
    RunStatus,
    RunTrigger,
    ScheduleKind,
    TradingMode,
)
from runner.conf import conf
from runner.policy_fields import SchedulePolicyFields
from runner.validation import validate_agent_config


class Agent(SchedulePolicyFields):
    """An agent's configuration (edited by operators) beside its runner state (written by services).

    The calendar schedule and run policies are configuration too (runner/policy_fields.py)."""

    # Configuration
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=64, help_text="A key of the RUNNER_AGENT_KINDS setting.")
    parameters = models.JSONField(default=dict, blank=True)
    interval_minutes = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(INTERVAL_MIN), MaxValueValidator(INTERVAL_MAX)],
        help_text=f"Minutes between scheduled cycles ({INTERVAL_MIN}..{INTERVAL_MAX}).",
    )
    timeout_seconds = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(TIMEOUT_MIN), MaxValueValidator(TIMEOUT_MAX)],
        help_text=f"A cycle's own deadline in seconds ({TIMEOUT_MIN}..{TIMEOUT_MAX}).",
    )
    max_consecutive_failures = models.PositiveIntegerField(
        default=3,
        validators=[MinValueValidator(MAX_FAILURES_MIN), MaxValueValidator(MAX_FAILURES_MAX)],
        help_text="Failed cycles in a row after which the runner trips to error.",
    )
    trading_mode = models.CharField(
        max_length=16, choices=TradingMode.choices, default=TradingMode.DRY_RUN
    )
    budgets = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per-day budgets (runner.budgets), e.g. "
        '{"cycles_per_day": 48, "llm_tokens_per_day": 200000}; {} means none.',
    )

    # Runner state and counters (read-only outside runner.services)
    state = models.CharField(max_length=16, choices=AgentState.choices, default=AgentState.STOPPED)
    next_run = models.DateTimeField(null=True, blank=True)
    paused_next_run = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(
        null=True, blank=True, help_text="A pause with an end: the runner resumes by itself then."
    )
    last_run = models.DateTimeField(null=True, blank=True, help_text="Start of the last cycle.")
    last_success = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    run_count = models.PositiveIntegerField(default=0)
    success_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Bumped by every claim; a run may write its result only while it holds the latest token.
    fencing_token = models.PositiveBigIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    CONFIG_FIELDS = (
        "name",
        "kind",
        "parameters",
        "interval_minutes",
        "timeout_seconds",
        "max_consecutive_failures",
        "trading_mode",
        *SchedulePolicyFields.SCHEDULE_FIELDS,
        "budgets",
    )

    # The runner state and counters the API, the CLI and the admin show (written by services only).
    STATE_FIELDS = (
        "state",
        "next_run",
        "last_run",
        "last_success",
        "run_count",
        "success_count",
        "error_count",
        "consecutive_failures",
        "last_error",
        "paused_until",
    )

    class Meta:
        ordering = ["slug"]
        permissions = [("control_agent", "Can start, stop, pause, resume and trigger agents")]
        constraints = [
            models.CheckConstraint(
                condition=Q(interval_minutes__gte=INTERVAL_MIN, interval_minutes__lte=INTERVAL_MAX),
                name="agent_interval_minutes_range",
            ),
            models.CheckConstraint(
                condition=Q(timeout_seconds__gte=TIMEOUT_MIN, timeout_seconds__lte=TIMEOUT_MAX),
                name="agent_timeout_seconds_range",
            ),
            models.CheckConstraint(
                condition=Q(
                    max_consecutive_failures__gte=MAX_FAILURES_MIN,
                    max_consecutive_failures__lte=MAX_FAILURES_MAX,
                ),
                name="agent_max_consecutive_failures_range",
            ),
            models.CheckConstraint(
                condition=Q(state__in=AgentState.values), name="agent_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(paused_until__isnull=True) | Q(state=AgentState.PAUSED),
                name="agent_paused_until_only_while_paused",
            ),
            models.CheckConstraint(
                condition=Q(trading_mode__in=TradingMode.values), name="agent_trading_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(schedule_kind__in=ScheduleKind.values),
                name="agent_schedule_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(overlap_policy__in=OverlapPolicy.values),
                name="agent_overlap_policy_valid",
            ),
            models.CheckConstraint(
                condition=Q(catchup_policy__in=CatchupPolicy.values),
                name="agent_catchup_policy_valid",
            ),
            models.CheckConstraint(
                condition=Q(jitter_seconds__lte=JITTER_MAX), name="agent_jitter_seconds_range"
            ),
            models.CheckConstraint(
                condition=Q(retry_attempts__lte=RETRY_ATTEMPTS_MAX),
                name="agent_retry_attempts_range",
            ),
        ]

    def __str__(self):
        return self.slug

    def clean(self):
        validate_agent_config(self)

    @property
    def effective_trading_mode(self):
        """The mode a cycle really runs in: never more live than the environment allows."""
        if self.trading_mode == TradingMode.LIVE and conf.TRADING_MODE == TradingMode.LIVE:
            return TradingMode.LIVE
        return TradingMode.DRY_RUN


class CycleRun(models.Model):
    """One cycle of one agent: who asked, when it ran, where, with what, and how it ended."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    control_event = models.ForeignKey(
        "AuditEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    slot = models.DateTimeField(
        null=True, blank=True, help_text="The scheduled time this cycle was for (scheduled runs)."
    )
    missed_slots = models.PositiveIntegerField(
        default=0, help_text="Scheduled slots passed over (downtime) and folded into this run."
    )
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    queued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True, default="", help_text="host:pid")
    task_id = models.CharField(max_length=64, blank=True, default="", help_text="django-q2 task id")
    fencing_token = models.PositiveBigIntegerField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    trading_mode = models.CharField(
        max_length=16, choices=TradingMode.choices, default=TradingMode.DRY_RUN
    )
    config_snapshot = models.JSONField(default=dict, blank=True)
    config_version = models.ForeignKey(
        "AgentConfigVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        help_text="The numbered configuration version this cycle ran with.",
    )
    summary = models.JSONField(default=dict, blank=True)
    error_type = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    log_lines = models.JSONField(default=list, blank=True)
    # Run policies (runner/services/policies.py)
    attempt = models.PositiveSmallIntegerField(
        default=0, help_text="0 for the first run of a slot; 1, 2, ... for its retries."
    )
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="A retry waits for its backoff until this time."
    )
    policy_note = models.CharField(
        max_length=300, blank=True, default="", help_text="Why a policy ran, delayed or ended it."
    )
    parameter_overrides = models.JSONField(
        default=dict, blank=True, help_text="Run-once parameters over the agent's own."
    )

    class Meta:
        ordering = ["-queued_at", "-id"]
        constraints = [
            # At most one cycle per agent runs at any moment, whatever the workers believe.
            models.UniqueConstraint(
                fields=["agent"],
                condition=Q(status="running"),
                name="cyclerun_one_running_per_agent",
            ),
            # A redelivered or duplicated scheduled task for the same slot cannot make a second run;
            # a retry of the slot is its next attempt.
            models.UniqueConstraint(
                fields=["agent", "slot", "attempt"], name="cyclerun_unique_agent_slot_attempt"
            ),
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="cyclerun_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(trigger__in=RunTrigger.values), name="cyclerun_trigger_valid"
            ),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True)
                | Q(started_at__isnull=True)
                | Q(finished_at__gte=models.F("started_at")),
                name="cyclerun_finished_after_started",
            ),
        ]
        indexes = [
            models.Index(fields=["agent", "queued_at"], name="cyclerun_agent_queued"),
            models.Index(fields=["agent", "started_at"], name="cyclerun_agent_started"),
            models.Index(fields=["started_at"], name="cyclerun_started"),
            # Reports over all agents filter on queued_at; run lists page by (-queued_at, -id).
            models.Index(fields=["queued_at", "id"], name="cyclerun_queued_id"),
            models.Index(fields=["status", "agent"], name="cyclerun_status_agent"),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="running"),
                name="cyclerun_running_lease",
            ),
        ]

    def __str__(self):
        """'Run 12 of default (succeeded)': the admin's title and breadcrumb of a run. The agent's
        slug is named only when the agent is already loaded (the runs admin selects it), so a
        list of other records showing their run never pays a query per row for it."""
        of_agent = f" of {self.agent.slug}" if CycleRun.agent.is_cached(self) else ""
        return f"Run {self.pk}{of_agent} ({self.get_status_display().lower()})"


class AuditEvent(models.Model):
    """One control request, applied or refused. Append-only: PostgreSQL refuses UPDATE and DELETE.

    References to the agent and the user carry no database constraint, so deleting either never
    has to touch (and so never can rewrite) the trail; the slug and username are kept as copies.
    """

    agent = models.ForeignKey(
        Agent,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
    )
    agent_slug = models.CharField(max_length=64, blank=True, default="")
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    outcome = models.CharField(max_length=16, choices=AuditOutcome.choices)
    refusal_reason = models.TextField(blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True, default="")
    source = models.CharField(max_length=16, choices=AuditSource.choices)
    state_before = models.CharField(max_length=16, blank=True, default="")
    state_after = models.CharField(max_length=16, blank=True, default="")
    changes = models.JSONField(
        default=dict, blank=True, help_text='{"field": {"before": ..., "after": ...}}'
    )
    reason = models.TextField(blank=True, default="", help_text="The operator's own words.")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=AuditOutcome.values), name="auditevent_outcome_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=AuditSource.values), name="auditevent_source_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["agent", "created_at"], name="auditevent_agent_created"),
            models.Index(fields=["created_at"], name="auditevent_created"),
        ]

    def __str__(self):
        return f"{self.agent_slug} {self.action} {self.outcome}"


class WorkerHeartbeat(models.Model):
    """The last time a qcluster worker ran the watchdog task: proof that schedules fire and
    workers execute, whatever the broker (the ORM broker keeps no cluster stats across processes).
    """

    worker = models.CharField(max_length=255, unique=True, help_text="host:pid")
    cluster = models.CharField(max_length=100, blank=True, default="")
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-seen_at"]
        indexes = [models.Index(fields=["seen_at"], name="workerheartbeat_seen")]

    def __str__(self):
        return f"{self.worker} {self.seen_at:%Y-%m-%d %H:%M:%S}"


class Alert(models.Model):
    """One alert condition, from the moment it opened to the moment it cleared.

    While an alert with the same fingerprint is open, the condition is not notified again (only
    `occurrences` and `last_seen_at` move); a partial unique index makes that hold across workers.
    """

    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    agent_slug = models.CharField(max_length=64, blank=True, default="")
    run = models.ForeignKey(
        CycleRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fingerprint = models.CharField(max_length=200)
    subject = models.CharField(max_length=255)
    message = models.TextField()
    occurrences = models.PositiveIntegerField(default=1)
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    delivery = models.JSONField(
        default=dict, blank=True, help_text='Per channel: {"email": "sent", "webhook": "..."}'
    )

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=Q(closed_at__isnull=True),
                name="alert_one_open_per_fingerprint",
            ),
            models.CheckConstraint(condition=Q(kind__in=AlertKind.values), name="alert_kind_valid"),
        ]
        indexes = [models.Index(fields=["kind", "closed_at"], name="alert_kind_open")]

    def __str__(self):
        return f"{self.kind} {self.agent_slug} {'open' if self.closed_at is None else 'closed'}"


# The guardrails' tables live in their own module; importing them here registers them.
from runner.guard_models import AgentConfigVersion, BudgetBreach  # noqa: E402, F401
