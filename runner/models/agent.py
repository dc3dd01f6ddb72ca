"""An agent: its configuration (edited by operators) beside its runner state (written by services)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from runner.choices import (
    INTERVAL_MAX,
    INTERVAL_MIN,
    JITTER_MAX,
    MAX_FAILURES_MAX,
    MAX_FAILURES_MIN,
    RETRY_ATTEMPTS_MAX,
    TIMEOUT_MAX,
    TIMEOUT_MIN,
    AgentState,
    CatchupPolicy,
    OverlapPolicy,
    ScheduleKind,
    TradingMode,
)
from runner.conf import conf
from runner.models.schedule_fields import SchedulePolicyFields
from runner.validation import validate_agent_config


class Agent(SchedulePolicyFields):
    """An agent's configuration (edited by operators) beside its runner state (written by services).

    The calendar schedule and run policies are configuration too (runner/models/schedule_fields.py)."""

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
